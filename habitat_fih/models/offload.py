"""Component offload: keep FIHModel's large components on CPU, on the accelerator only while
they run (``FIHModelConfig.offload``, ``fih-infer --offload``; the design's "dynamic LLM
load / unload, 7B supported"), so inference and evaluation fit GPUs smaller than the model.

What moves, and when. `ComponentOffload` holds the execution device (where everything runs),
the storage device (CPU) and the offloaded components, a subset of `OFFLOADABLE`: VGGT, DINOv3
and the LLM (Qwen with its LoRA adapters and frame embedding). `FIHModel.forward` runs each
inside ``resident(name)``: on entry every parameter and buffer of the component is copied to
the execution device; on exit (exceptions included) it is dropped there again. Fusion and the
heads are small and stay on the execution device for good. So at most ONE offloaded component
occupies the accelerator at a time: peak accelerator memory is the small modules + the
components left resident + the largest of (offloaded component + its stage's activations),
instead of every weight + the largest activations. With the 7B model (VGGT-1B 4.4 GiB in
float32, DINOv3-L 0.6 GiB and the Qwen2.5-VL-7B language model with LoRA 13.2 GiB in bfloat16;
fusion and heads 0.25 GiB) ``all`` lowers the weights' peak from 18.5 to 13.5 GiB (the LLM's
stage) and leaves VGGT's stage, whose activations grow with the history, with 4.7 GiB of
weights instead of 18.5. Offloading ONE component alone does not lower the weights' peak (its
own stage still holds all the others); offload at least two, e.g. ``[vggt, llm]``.

How. Each tensor keeps ONE persistent CPU copy, its resting ``.data`` (pinned the first time
the execution device is CUDA, so copies are DMA transfers issued with ``non_blocking=True``).
Entering swaps ``tensor.data`` to a fresh device copy of it; leaving swaps ``.data`` back to
the CPU copy and the device copy is freed (back to PyTorch's caching allocator, which reuses it
for the next component). Nothing is copied back: inference never changes the weights, so the
move back costs no transfer. (Changes made to an offloaded component's tensors while it is
resident are therefore lost; change weights outside `forward`, where they live on CPU:
`load_state_dict` writes into the CPU copies.) Swapping ``.data`` keeps every Parameter object,
so optimisers, tied weights and modules holding a tensor by reference see the same objects.

What it costs. Per forward, bytes copied host -> device = the sum of the offloaded components'
parameters and buffers, once (a design copying the weights back would move them twice), and
the counters record two moves per component (one load, one release). On a CPU execution device
a load is a memory copy (nothing is saved there: that mode exists for tests and benchmarks).
The transfer is bandwidth-bound: with pinned memory on PCIe 4.0 x16 (~25 GB/s) the 18.2 GiB of
the three 7B-model components take an estimated ~0.8 s per forward (about half on PCIe 5.0),
typically more than the compute itself: offload trades latency for memory, for GPUs that cannot
hold the whole model, not for speed.
Measured numbers: ``benchmarks/bench_offload.py`` (README, "Inference on a video").

Offload is for inference and evaluation only: `resident` refuses a component with trainable
parameters while autograd records (run under ``torch.no_grad()`` / ``torch.inference_mode()``),
and the trainer refuses ``habitat_baselines.fih.model.overrides.offload`` for training
(`habitat_fih.trainers.config_checks.check_offload_not_training`).
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass

import torch
from torch import Tensor, nn

__all__ = ["OFFLOADABLE", "ComponentOffload", "ComponentStats", "offload_components"]

#: The components that can be offloaded (`FIHModel.device_of` / stage names).
OFFLOADABLE: tuple[str, ...] = ("vggt", "dinov3", "llm")


def offload_components(
    value: str | Iterable[str] | None, where: str = "offload"
) -> tuple[str, ...]:
    """The offloaded components named by `value`, in `OFFLOADABLE` order: a sequence of names,
    or a string ``"vggt,llm"`` / ``"all"`` / ``"none"`` / ``""``; None = none.

    Raises:
        ValueError: an unknown or repeated name (the message names `where` and the value).
    """
    if value is None:
        return ()
    if isinstance(value, str):
        text = value.strip()
        if text in ("all", "none", ""):
            return OFFLOADABLE if text == "all" else ()
        names = [part.strip() for part in text.split(",")]
    elif isinstance(value, Iterable):
        names = [str(part) for part in value]
    else:
        raise ValueError(f"{where}={value!r}: expected a list of component names or 'all'")
    unknown = [n for n in names if n not in OFFLOADABLE]
    if unknown or len(set(names)) != len(names):
        raise ValueError(
            f"{where}={value!r}: expected distinct names among {list(OFFLOADABLE)} (or 'all'), "
            + (f"unknown {unknown}" if unknown else "got a name twice")
        )
    return tuple(n for n in OFFLOADABLE if n in names)


@dataclass
class ComponentStats:
    """Transfer counters of one component (or their sum, `ComponentOffload.totals`).

    Attributes:
        loads: moves storage -> execution device (one per outermost `resident`).
        releases: moves back (a ``.data`` swap, no copy).
        bytes_loaded: bytes copied to the execution device.
        seconds: time spent moving (CUDA: measured with events, so asynchronous copies count
            in full; CPU: wall time).
    """

    loads: int = 0
    releases: int = 0
    bytes_loaded: int = 0
    seconds: float = 0.0

    @property
    def transfers(self) -> int:
        """Moves in either direction (2 per component per forward)."""
        return self.loads + self.releases


def _tensors(module: nn.Module) -> Iterator[Tensor]:
    """Every parameter and buffer of `module`, each once (tied weights are one object)."""
    yield from module.parameters()
    yield from module.buffers()


def _nbytes(tensors: Iterable[Tensor]) -> int:
    return sum(t.numel() * t.element_size() for t in tensors)


class ComponentOffload:
    """Moves named components between a storage device (CPU) and the execution device around
    the code that runs them (see the module docstring).

    Args:
        modules: component name -> module, the names a subset of `OFFLOADABLE`; each is moved
            to the storage device here.
        execution_device: where the components run (may be changed later: `FIHModel.to`
            follows the small modules' device).
        storage_device: where they rest between uses (``"cpu"``).

    Raises:
        ValueError: a name outside `OFFLOADABLE`, or a storage device that is not CPU.
    """

    def __init__(
        self,
        modules: Mapping[str, nn.Module],
        execution_device: str | torch.device,
        storage_device: str | torch.device = "cpu",
    ) -> None:
        offload_components(list(modules), where="offloaded components")
        self.storage_device = torch.device(storage_device)
        if self.storage_device.type != "cpu":
            raise ValueError(f"storage_device={storage_device!r}: expected 'cpu'")
        self.execution_device = torch.device(execution_device)
        self.modules = dict(modules)
        self._stats = {name: ComponentStats() for name in self.modules}
        self._depth = dict.fromkeys(self.modules, 0)
        self._resting: dict[str, list[tuple[Tensor, Tensor]]] = {}
        self._pending: list[tuple[str, torch.cuda.Event, torch.cuda.Event]] = []
        for module in self.modules.values():
            module.to(self.storage_device)

    @property
    def components(self) -> tuple[str, ...]:
        """The offloaded component names."""
        return tuple(self.modules)

    def component_bytes(self, name: str) -> int:
        """Bytes of one component's parameters and buffers (what one load copies)."""
        return _nbytes(_tensors(self._module(name)))

    @property
    def stats(self) -> dict[str, ComponentStats]:
        """The counters per component (CUDA timings resolved first)."""
        self._resolve_timings()
        return self._stats

    def totals(self) -> ComponentStats:
        """The counters summed over the components."""
        out = ComponentStats()
        for s in self.stats.values():
            out.loads += s.loads
            out.releases += s.releases
            out.bytes_loaded += s.bytes_loaded
            out.seconds += s.seconds
        return out

    def reset_stats(self) -> None:
        """Zero every counter."""
        self._resolve_timings()
        self._stats = {name: ComponentStats() for name in self.modules}

    def is_resident(self, name: str) -> bool:
        """Whether `name` is on the execution device now (inside `resident(name)`)."""
        self._module(name)
        return self._depth[name] > 0

    @contextlib.contextmanager
    def resident(self, name: str) -> Iterator[nn.Module]:
        """Hold component `name` on the execution device for the ``with`` block, then move it
        back (also on an exception). Re-entrant: nested blocks move it once.

        Raises:
            ValueError: `name` is not an offloaded component.
            RuntimeError: autograd is recording and the component has trainable parameters
                (offload is for inference / evaluation).
        """
        module = self._module(name)
        if self._depth[name] == 0:
            if torch.is_grad_enabled() and any(p.requires_grad for p in module.parameters()):
                raise RuntimeError(
                    f"offloaded component {name!r} has trainable parameters and autograd is "
                    "recording: offload is for inference / evaluation, run under "
                    "torch.no_grad() (or turn offload off to train)"
                )
            self._load(name, module)
        self._depth[name] += 1
        try:
            yield module
        finally:
            self._depth[name] -= 1
            if self._depth[name] == 0:
                self._release(name)

    # ------------------------------------------------------------------ moves
    def _module(self, name: str) -> nn.Module:
        if name not in self.modules:
            raise ValueError(
                f"component {name!r} is not offloaded: expected one of {list(self.modules)}"
            )
        return self.modules[name]

    def _load(self, name: str, module: nn.Module) -> None:
        device = self.execution_device
        pin = device.type == "cuda"
        resting: list[tuple[Tensor, Tensor]] = []
        with self._timed(name), torch.no_grad():
            try:
                for t in _tensors(module):
                    if pin and t.device.type == "cpu" and not t.is_pinned():
                        # once: the pinned copy becomes the resting one
                        t.data = t.data.pin_memory()
                    resting.append((t, t.data))
                    # always a fresh copy (CPU -> CPU too): the resting copy never sees a forward
                    t.data = t.data.to(device, non_blocking=pin, copy=True)
            except BaseException:  # e.g. out of device memory half-way: all back to storage
                for t, rest in resting:
                    t.data = rest
                raise
        self._resting[name] = resting
        stats = self._stats[name]
        stats.loads += 1
        stats.bytes_loaded += _nbytes(rest for _, rest in resting)

    def _release(self, name: str) -> None:
        with self._timed(name):
            for t, rest in self._resting.pop(name):
                t.data = rest  # the device copy is freed; nothing to copy back
        self._stats[name].releases += 1

    @contextlib.contextmanager
    def _timed(self, name: str) -> Iterator[None]:
        if self.execution_device.type != "cuda":
            start = time.perf_counter()
            yield
            self._stats[name].seconds += time.perf_counter() - start
            return
        stream = torch.cuda.current_stream(self.execution_device)
        begin, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        begin.record(stream)
        yield
        end.record(stream)
        self._pending.append((name, begin, end))  # resolved when the counters are read

    def _resolve_timings(self) -> None:
        for name, begin, end in self._pending:
            end.synchronize()
            if name in self._stats:
                self._stats[name].seconds += begin.elapsed_time(end) / 1e3
        self._pending.clear()
