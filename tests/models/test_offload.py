"""Component offload (`habitat_fih.models.offload`, `FIHModel.enable_offload`): same numbers as
the resident model, components on the storage device except during their stage, moved back on
errors, counters, refusals; and how the option reaches fih-infer and the trainer.

The execution device is CPU here (a load is then a memory copy, so where a component is can be
told by its tensors' storage); the pinned CPU -> CUDA path has its own GPU-only test."""

from __future__ import annotations

import _tiny_qwen as _tiny  # tests/helpers (on sys.path via tests/conftest.py)
import pytest
import torch

from habitat_fih.models.config import DeviceAllocation, FIHModelConfig
from habitat_fih.models.factory import build_model
from habitat_fih.models.fih_model import FIHModel
from habitat_fih.models.frame_cache import FrameCache
from habitat_fih.models.offload import OFFLOADABLE, ComponentOffload, offload_components

B, S, R = 2, 9, 32
TEXTS = ["walk to the kitchen and stop", "turn left past the table"]
MODULES = {"vggt": "vggt", "dinov3": "dinov3", "llm": "qwen"}  # component -> FIHModel attribute


def tiny_model(**overrides) -> FIHModel:
    torch.manual_seed(0)
    return build_model(FIHModelConfig.tiny(**overrides), tokenizer=_tiny.tiny_tokenizer()).eval()


def inputs(seed: int = 1, steps: int = S) -> tuple[torch.Tensor, None, torch.Tensor]:
    frames = torch.rand(B, steps, 3, R, R, generator=torch.Generator().manual_seed(seed))
    return frames, None, 10 + 3 * torch.arange(steps).expand(B, steps)


def pointers(module: torch.nn.Module) -> list[int]:
    return [t.data_ptr() for t in [*module.parameters(), *module.buffers()]]


def assert_same(a, b) -> None:
    """Bit-identical outputs."""
    for name in ("keyframe_indices", "heatmap_logits", "action_logits", "visual_hidden"):
        assert torch.equal(getattr(a, name), getattr(b, name)), name
    for name in ("last_hidden", "fused_tokens", "world_points", "world_points_conf"):
        assert torch.equal(getattr(a, name), getattr(b, name)), name


@pytest.fixture(scope="module")
def model() -> FIHModel:
    return tiny_model()


@pytest.mark.parametrize("cached", [False, True], ids=["no-cache", "frame-cache"])
@torch.no_grad()
def test_offloaded_outputs_equal_resident(cached: bool) -> None:
    """Every output bit-identical, without caches and acting step by step with FrameCaches."""
    model = tiny_model(vggt_heads="all")
    steps = [5, 7, S] if cached else [S]
    frames, _, indices = inputs()

    def run() -> list:
        caches = [FrameCache(), FrameCache()] if cached else None
        return [model(frames[:, :n], None, indices[:, :n], TEXTS, caches=caches) for n in steps]

    resident = run()
    offload = model.enable_offload("cpu")
    try:
        for a, b in zip(resident, run(), strict=True):
            assert_same(a, b)
            assert torch.equal(a.pose_enc, b.pose_enc) and torch.equal(a.depth, b.depth)
        assert offload.totals().loads == 3 * len(steps)
    finally:
        model.disable_offload()


@torch.no_grad()
def test_components_rest_on_storage_and_run_on_execution_device(model: FIHModel) -> None:
    """Outside forward each offloaded component's tensors are its resting CPU copies; inside
    its own stage (seen by forward pre-hooks) they are fresh execution-device copies, and no
    other large component is resident. Fusion and the heads never move."""
    offload = model.enable_offload("cpu")
    resting = {name: pointers(getattr(model, attr)) for name, attr in MODULES.items()}
    fusion = pointers(model.fusion)
    seen: dict[str, list[tuple]] = {name: [] for name in MODULES}

    def hook(name: str):
        def record(module: torch.nn.Module, args: tuple) -> None:
            params = [*module.parameters(), *module.buffers()]
            seen[name].append(
                (
                    {n: offload.is_resident(n) for n in MODULES},
                    {t.device for t in params},
                    not set(pointers(module)) & set(resting[name]),
                )
            )

        return record

    handles = [
        getattr(model, attr).register_forward_pre_hook(hook(name)) for name, attr in MODULES.items()
    ]
    try:
        model(*inputs(), TEXTS)
    finally:
        for h in handles:
            h.remove()
        model.disable_offload()
    for name, attr in MODULES.items():
        assert seen[name], f"{name} never ran"
        for resident, devices, fresh in seen[name]:
            assert resident == {n: n == name for n in MODULES}  # only the running component
            assert devices == {offload.execution_device}
            assert fresh  # the execution copies, not the resting CPU tensors
        module = getattr(model, attr)
        assert pointers(module) == resting[name]
        assert {t.device.type for t in module.parameters()} == {"cpu"}
    assert pointers(model.fusion) == fusion


@torch.no_grad()
def test_exception_in_a_stage_moves_the_component_back(model: FIHModel) -> None:
    offload = model.enable_offload("cpu")
    resting = {name: pointers(getattr(model, attr)) for name, attr in MODULES.items()}

    def fail(module: torch.nn.Module, args: tuple) -> None:
        raise RuntimeError("boom in dinov3")

    handle = model.dinov3.register_forward_pre_hook(fail)
    try:
        with pytest.raises(RuntimeError, match="boom in dinov3"):
            model(*inputs(), TEXTS)
        with pytest.raises(KeyError), offload.resident("llm"):
            raise KeyError("inside")
    finally:
        handle.remove()
        model.disable_offload()
    assert not any(offload.is_resident(n) for n in MODULES)
    for name, attr in MODULES.items():
        assert pointers(getattr(model, attr)) == resting[name]
    stats = offload.stats
    assert stats["dinov3"].loads == stats["dinov3"].releases == 1
    assert stats["llm"].loads == stats["llm"].releases == 1  # the `with` block, not forward


@torch.no_grad()
def test_counters_two_moves_per_component_per_forward(model: FIHModel) -> None:
    offload = model.enable_offload("cpu", ("llm", "vggt"))  # any order; stored in OFFLOADABLE's
    try:
        assert offload.components == ("vggt", "llm")
        assert model.device_of("dinov3") == torch.device("cpu")  # resident, not offloaded
        for _ in range(3):
            model(*inputs(), TEXTS)
        stats = offload.stats
        for name in ("vggt", "llm"):
            assert (stats[name].loads, stats[name].releases, stats[name].transfers) == (3, 3, 6)
            assert stats[name].bytes_loaded == 3 * offload.component_bytes(name)
            assert stats[name].seconds > 0
        total = offload.totals()
        assert total.transfers == 12
        size = sum(
            t.numel() * t.element_size() for t in [*model.qwen.parameters(), *model.qwen.buffers()]
        )
        assert offload.component_bytes("llm") == size
        offload.reset_stats()
        assert offload.totals().transfers == 0
    finally:
        model.disable_offload()


def test_resident_is_reentrant() -> None:
    block = torch.nn.Linear(3, 3).requires_grad_(False)
    offload = ComponentOffload({"vggt": block}, "cpu")
    with offload.resident("vggt"):
        inner = block.weight.data_ptr()
        with offload.resident("vggt"):
            assert block.weight.data_ptr() == inner  # not moved again
        assert offload.is_resident("vggt")
    assert not offload.is_resident("vggt")
    assert (offload.stats["vggt"].loads, offload.stats["vggt"].releases) == (1, 1)


def test_bad_names_are_refused(model: FIHModel) -> None:
    with pytest.raises(ValueError, match=r"components=\['vggt', 'bert'\].*unknown \['bert'\]"):
        model.enable_offload("cpu", ["vggt", "bert"])
    assert model.offload is None
    with pytest.raises(ValueError, match="got a name twice"):
        offload_components(["llm", "llm"])
    with pytest.raises(ValueError, match=r"FIHModelConfig.offload='gpu'.*unknown \['gpu'\]"):
        FIHModelConfig.tiny(offload="gpu")
    with pytest.raises(ValueError, match="expected a list of component names"):
        FIHModelConfig.tiny(offload=3)
    with pytest.raises(ValueError, match="device_allocation sets devices per component"):
        FIHModelConfig.tiny(offload=["llm"], device_allocation=DeviceAllocation(vggt="cpu"))
    offload = ComponentOffload({"llm": torch.nn.Linear(2, 2)}, "cpu")
    with pytest.raises(ValueError, match="component 'fusion' is not offloaded"):
        with offload.resident("fusion"):
            pass
    with pytest.raises(ValueError, match="offloaded components"):
        ComponentOffload({"heads": torch.nn.Linear(2, 2)}, "cpu")
    assert offload_components("all") == OFFLOADABLE == ("vggt", "dinov3", "llm")
    assert offload_components("llm, vggt") == ("vggt", "llm")
    assert offload_components("none") == offload_components(None) == ()
    assert FIHModelConfig.tiny(offload=["llm", "dinov3"]).offload == ("dinov3", "llm")


def test_training_use_is_refused() -> None:
    """Trainable parameters while autograd records: refused; a frozen component is fine."""
    model = tiny_model()
    model.set_stage("main")  # LoRA adapters of the LLM trainable
    model.train()
    model.enable_offload("cpu", ("vggt", "llm"))
    try:
        with pytest.raises(RuntimeError, match="'llm' has trainable parameters.*inference"):
            model(*inputs(), TEXTS)
        assert not model.offload.is_resident("llm")
        model.enable_offload("cpu", ("vggt",))  # frozen VGGT: fine with autograd on
        out = model(*inputs(), TEXTS)
        out.heatmap_logits.float().mean().backward()
    finally:
        model.disable_offload()


def test_to_leaves_offloaded_components_on_cpu() -> None:
    """`.to()` moves only the resident modules; the execution device follows fusion."""
    model = tiny_model()
    offload = model.enable_offload("cpu", ("llm",))
    model.to("meta")
    assert offload.execution_device == torch.device("meta") == model.device_of("llm")
    assert next(model.fusion.parameters()).device.type == "meta"
    assert next(model.vggt.parameters()).device.type == "meta"
    assert {p.device.type for p in model.qwen.parameters()} == {"cpu"}


def test_build_model_applies_the_config_and_loads_weights() -> None:
    """`config.offload` through build_model; a checkpoint of the resident model loads (offload
    is runtime-only for the checkpoint's config check) into the CPU copies."""
    from habitat_fih.trainers.checkpoint import load_model_weights

    resident = tiny_model()
    for p in resident.heatmap_head.parameters():
        p.data.normal_()
    ckpt = {"model": resident.state_dict(), "model_config": resident.config.to_dict()}
    offloaded = tiny_model(offload=["vggt", "dinov3", "llm"])
    assert offloaded.offload is not None and offloaded.offload.components == OFFLOADABLE
    load_model_weights(offloaded, ckpt, offloaded.config, "ckpt.0.pth")
    with torch.no_grad():
        assert_same(resident(*inputs(), TEXTS), offloaded(*inputs(), TEXTS))
    meta = build_model(
        FIHModelConfig.tiny(offload=["llm"]), tokenizer=_tiny.tiny_tokenizer(), device="meta"
    )
    assert meta.offload is None  # nothing to offload on meta


def test_fih_infer_offload_flag() -> None:
    from habitat_fih.infer.engine import InferenceEngine
    from habitat_fih.infer.settings import OFFLOAD_CHOICES, InferInputError, load_settings

    assert OFFLOAD_CHOICES == OFFLOADABLE
    assert load_settings(None, {"offload": "all"}).offload == OFFLOADABLE
    assert load_settings(None, {"offload": "llm,vggt"}).offload == ("vggt", "llm")
    assert load_settings(None, {}).offload == ()
    with pytest.raises(InferInputError, match="--offload 'llm,gpu'"):
        load_settings(None, {"offload": "llm,gpu"})
    engine = InferenceEngine(load_settings(None, {"offload": "dinov3,llm", "device": "cpu"}))
    engine.build()
    assert engine.config.offload == ("dinov3", "llm")
    assert engine.model.offload.components == ("dinov3", "llm")


def test_trainer_refuses_training_with_offload(tmp_path, monkeypatch) -> None:
    """habitat_baselines.fih.model.overrides.offload: refused for training, and in evaluation
    it reaches the policies the trainer builds."""
    from pathlib import Path

    from habitat.config.default import patch_config

    from habitat_fih.config import get_config
    from habitat_fih.trainers.config_checks import OFFLOAD_SETTING
    from habitat_fih.trainers.fih_trainer import FIHTrainer

    monkeypatch.chdir(Path(__file__).resolve().parents[2])  # data/ paths are repo-relative

    def config(*extra: str):
        return patch_config(
            get_config(
                "fih/synthetic_tiny",
                [
                    f"habitat_baselines.checkpoint_folder={tmp_path}/ckpt",
                    f"habitat_baselines.tensorboard_dir={tmp_path}/tb",
                    "+habitat_baselines.fih.model.overrides.offload=[llm,vggt]",
                    *extra,
                ],
            )
        )

    with pytest.raises(ValueError, match=rf"{OFFLOAD_SETTING}=\['vggt', 'llm'\].*evaluation"):
        FIHTrainer(config())
    trainer = FIHTrainer(config("habitat_baselines.evaluate=True"))
    policy = trainer.build_policy(0)
    assert policy.model.offload is not None
    assert policy.model.offload.components == ("vggt", "llm")
    assert {p.device.type for p in policy.model.qwen.parameters()} == {"cpu"}
