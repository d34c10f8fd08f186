"""The bundled data's tokenizer (data/tokenizer/synthetic_r2r, habitat_fih.datasets.tokenizer):
every train word has an id, the val words that train lacks are [UNK], every bundled instruction
round-trips, the special ids are the tiny Qwen config's, the folder loads with AutoTokenizer, is
byte-identical when rebuilt, and the trainer's tiny model reads it (issue 16, item 1).

The expectations come from the raw episode files and the test's own splitting rule, not from
the tokenizer."""

from __future__ import annotations

import gzip
import json
import re
from functools import cache
from pathlib import Path

import _tiny_qwen as _tiny  # tests/helpers (on sys.path via tests/conftest.py)
import pytest
import torch

from habitat_fih.datasets.tokenizer import (
    TOKENIZER_FILES,
    build_bundled_tokenizer,
    bundled_tokenizer_dir,
    normalise,
    prompt_words,
    write_bundled_tokenizer,
)
from habitat_fih.models.config import FIHModelConfig

from .conftest import DATA, EPISODES, SPLITS

BUNDLED = Path(bundled_tokenizer_dir(str(DATA)))


#: the tokenizer's splitting rule, written out: lower case, then words, single digits and runs
#: of punctuation (tokenizers' Whitespace = \w+|[^\w\s]+, then Digits(individual_digits=True))
_TOKEN = re.compile(r"[^\W\d]+|\d|[^\w\s]+")


def words(text: str) -> list[str]:
    return _TOKEN.findall(text.lower())


@cache
def instructions(split: str) -> tuple[str, ...]:
    with gzip.open(EPISODES / split / f"{split}.json.gz", "rt") as f:
        episodes = json.load(f)["episodes"]
    return tuple(ep["instruction"]["instruction_text"] for ep in episodes)


def vocabulary(split: str) -> set[str]:
    return {w for text in instructions(split) for w in words(text)}


@cache
def tokenizer():
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(str(BUNDLED), local_files_only=True)


@pytest.fixture(scope="module")
def tok(bundled):
    if not (BUNDLED / "tokenizer.json").is_file():
        pytest.fail("bundled tokenizer missing: run `python -m habitat_fih.datasets.tokenizer`")
    return tokenizer()


def _prompt_text() -> str:
    """The prompt's own words, from the backbone config's defaults (and build_inputs' literal
    ``Instruction:`` and chat roles)."""
    q = FIHModelConfig.tiny().qwen
    return " ".join(
        [
            "system user assistant",
            q.system_prompt,
            q.frame_marker,
            q.current_marker,
            "Instruction:",
            q.question,
        ]
    )


def test_val_words_in_train_have_ids_and_the_two_others_are_unk(tok) -> None:
    train = vocabulary("train")
    assert len({w for w in train if w.isalpha()}) == 101  # the bundled train split's words
    prompt = set(words(_prompt_text()))
    unseen = {split: vocabulary(split) - train for split in ("val_seen", "val_unseen")}
    assert unseen == {"val_seen": {"away", "from"}, "val_unseen": set()}
    # "from" is a prompt word ("keyframes from your walk"): it has an id; "away" has none
    assert "from" in prompt and "away" not in prompt
    for split in ("val_seen", "val_unseen"):
        for word in vocabulary(split):
            got = tok.convert_tokens_to_ids(word)
            assert (got == tok.unk_token_id) == (word not in train | prompt), (split, word)
    for split in SPLITS:  # and in running text: [UNK] exactly where such a word stands
        for text in instructions(split):
            ids = tok(text, add_special_tokens=False).input_ids
            expected = [w not in train | prompt for w in words(text)]
            assert [i == tok.unk_token_id for i in ids] == expected, text


@pytest.mark.parametrize("split", SPLITS)
def test_every_bundled_instruction_round_trips(tok, split) -> None:
    known = vocabulary("train") | set(words(_prompt_text()))
    for text in instructions(split):
        expected = " ".join(w if w in known else "[UNK]" for w in words(text))
        assert normalise(text) == " ".join(words(text))
        assert tok.decode(tok(text, add_special_tokens=False).input_ids) == expected
        if "[UNK]" not in expected:
            assert tok.decode(tok(text).input_ids) == normalise(text)


def test_digits_and_prompt_words_have_ids(tok) -> None:
    ids = tok("Current view (frame 1234567890): Frame 31:", add_special_tokens=False).input_ids
    assert tok.unk_token_id not in ids
    assert tok.convert_ids_to_tokens(ids)[:3] == ["current", "view", "("]
    assert tok.decode(ids) == "current view ( frame 1 2 3 4 5 6 7 8 9 0 ): frame 3 1 :"


def test_special_tokens_have_the_tiny_configs_ids(tok) -> None:
    cfg = FIHModelConfig.tiny().qwen.model_config
    text = cfg["text_config"]
    assert tok.convert_tokens_to_ids("<|image_pad|>") == cfg["image_token_id"] == 180
    assert tok.convert_tokens_to_ids("<|video_pad|>") == cfg["video_token_id"]
    assert tok.convert_tokens_to_ids("<|vision_start|>") == cfg["vision_start_token_id"]
    assert tok.convert_tokens_to_ids("<|vision_end|>") == cfg["vision_end_token_id"]
    assert tok.pad_token == "<|endoftext|>" and tok.pad_token_id == text["pad_token_id"]
    assert tok.eos_token == "<|im_end|>" and tok.eos_token_id == text["eos_token_id"]
    # the same layout as the test tokenizer of tests/helpers/_tiny_qwen.py
    for token, idx in _tiny.SPECIAL_IDS.items():
        assert tok.convert_tokens_to_ids(token) == idx, token
    assert tok.unk_token == "[UNK]"
    words_ids = [i for t, i in tok.get_vocab().items() if t not in _tiny.SPECIAL_IDS]
    assert sorted(words_ids) == list(range(len(words_ids)))  # words at 0..N-1, below 180
    assert max(tok.get_vocab().values()) < text["vocab_size"]
    # the ChatML template of the backbone's fallback
    from habitat_fih.models.qwen_vl_backbone import CHATML_FALLBACK_TEMPLATE

    assert tok.chat_template == CHATML_FALLBACK_TEMPLATE
    chat = tok.apply_chat_template(
        [{"role": "user", "content": "Go."}], tokenize=False, add_generation_prompt=True
    )
    assert chat == "<|im_start|>user\nGo.<|im_end|>\n<|im_start|>assistant\n"


def test_saved_folder_loads_and_gives_the_built_ids(tok) -> None:
    from transformers import PreTrainedTokenizerFast

    assert sorted(p.name for p in BUNDLED.iterdir()) == sorted(TOKENIZER_FILES)
    config = FIHModelConfig.tiny()
    built = build_bundled_tokenizer(instructions("train"), prompt_words(config), config)
    fast = PreTrainedTokenizerFast.from_pretrained(str(BUNDLED), local_files_only=True)
    texts = [t for s in SPLITS for t in instructions(s)] + [_prompt_text()]
    for other in (built, fast):
        assert other.get_vocab() == tok.get_vocab()
        assert other(texts).input_ids == tok(texts).input_ids
        assert other.chat_template == tok.chat_template


def test_rebuilding_is_byte_identical(tok, tmp_path: Path) -> None:
    train = list(instructions("train"))
    a = write_bundled_tokenizer(train, str(tmp_path / "a" / "synthetic_r2r"))
    b = write_bundled_tokenizer(list(reversed(train)), str(tmp_path / "b" / "synthetic_r2r"))
    for name in TOKENIZER_FILES:
        data = (Path(a) / name).read_bytes()
        assert data == (Path(b) / name).read_bytes(), name
        assert data == (BUNDLED / name).read_bytes(), f"{name}: data/ is stale (make data)"
    # rewriting identical bytes leaves the folder alone; a killed write's leftovers go
    stamp = {n: (Path(a) / n).stat().st_mtime_ns for n in TOKENIZER_FILES}
    leftover = tmp_path / "a" / f".synthetic_r2r.{'0' * 32}.tmp"
    leftover.mkdir()
    (leftover / "tokenizer.json").write_text("{")
    write_bundled_tokenizer(train, a)
    assert {n: (Path(a) / n).stat().st_mtime_ns for n in TOKENIZER_FILES} == stamp
    assert sorted(p.name for p in (tmp_path / "a").iterdir()) == ["synthetic_r2r"]
    # other bytes replace the folder whole
    write_bundled_tokenizer(train[:10], a)
    assert (Path(a) / "tokenizer.json").read_bytes() != (BUNDLED / "tokenizer.json").read_bytes()
    assert sorted(p.name for p in (tmp_path / "a").iterdir()) == ["synthetic_r2r"]


def test_generate_writes_the_tokenizer(tok, tmp_path: Path, monkeypatch) -> None:
    """`generate` (make data) writes the tokenizer next to the episodes: with the houses'
    episodes as bundled (house generation itself is tested in test_generate.py), the episode
    files and the tokenizer come out byte-identical to data/."""
    from habitat_fih.datasets import generate as gen

    def episodes(split: str, kind: str) -> dict:
        with gzip.open(EPISODES / split / f"{split}{kind}.json.gz", "rt") as f:
            return json.load(f)

    def fake_house(spec, index, out):
        scene = f"{spec.scene_dataset}/{spec.house_name(index)}.glb"
        result = {}
        for split in spec.counts(index):
            eps = [e for e in episodes(split, "")["episodes"] if e["scene_id"] == scene]
            for e in eps:
                e["instruction"] = {"instruction_text": e["instruction"]["instruction_text"]}
            gt = episodes(split, "_gt")
            result[split] = (eps, {str(e["episode_id"]): gt[str(e["episode_id"])] for e in eps})
        return result

    monkeypatch.setattr(gen, "generate_house", fake_house)
    gen.generate(gen.DEFAULT, str(tmp_path))
    for name in TOKENIZER_FILES:
        got = (tmp_path / "tokenizer" / "synthetic_r2r" / name).read_bytes()
        assert got == (BUNDLED / name).read_bytes(), name
    for split in SPLITS:
        path = Path("datasets") / "synthetic_r2r" / "v1" / split / f"{split}.json.gz"
        assert (tmp_path / path).read_bytes() == (DATA / path).read_bytes(), split


def test_tokenizer_dir_must_fit_a_random_init_config(tok) -> None:
    from habitat_fih.models.spec import build_model_config, tokenizer_for

    spec = {"preset": "tiny", "tokenizer_dir": str(BUNDLED)}
    assert tokenizer_for(build_model_config(spec)).get_vocab() == tok.get_vocab()
    moved = {"overrides": {"qwen": {"model_config": {"image_token_id": 170}}}}
    with pytest.raises(ValueError, match=r"<\|image_pad\|> is 180, the config's 170"):
        tokenizer_for(build_model_config({**spec, **moved}))
    small = {"overrides": {"qwen": {"model_config": {"text_config": {"vocab_size": 185}}}}}
    with pytest.raises(ValueError, match="ids reach 187, the config's vocab_size is 185"):
        tokenizer_for(build_model_config({**spec, **small}))
    with pytest.raises(FileNotFoundError, match="python -m habitat_fih.datasets.tokenizer"):
        build_model_config({**spec, "tokenizer_dir": str(BUNDLED) + "_missing"})


def test_the_trainers_tiny_model_reads_the_bundled_tokenizer(tok, monkeypatch) -> None:
    """fih/synthetic_tiny (make run): FIHTrainer._tokenizer is the bundled tokenizer, and the
    tiny model's forward on a bundled instruction runs with no [UNK] in its prompt."""
    from habitat.config.default import patch_config

    from habitat_fih.config import get_config
    from habitat_fih.models.factory import build_model
    from habitat_fih.trainers.fih_trainer import FIHTrainer

    monkeypatch.chdir(DATA.parent)  # the config's data paths are relative to the repo root
    trainer = FIHTrainer(patch_config(get_config("fih/synthetic_tiny")))
    # recorded absolute, so the checkpoint's model config finds it from any folder
    assert trainer.model_config.qwen.tokenizer_dir == str(DATA / "tokenizer/synthetic_r2r")
    tokenizer = trainer._tokenizer()
    assert tokenizer.get_vocab() == tok.get_vocab()
    torch.manual_seed(0)
    model = build_model(trainer.model_config, tokenizer=tokenizer).eval()
    assert model.qwen.tokenizer is tokenizer

    instruction = instructions("train")[0]
    b, s, r = 1, 9, model.config.image_size
    frames = torch.rand(b, s, 3, r, r, generator=torch.Generator().manual_seed(1))
    indices = 10 + 3 * torch.arange(s).expand(b, s)
    poses = torch.zeros(b, s, 9)  # pose encodings: translation, quaternion (x, y, z, w), FoV
    poses[..., 2] = torch.arange(s, dtype=torch.float32) * 0.25  # walking forward
    poses[..., 6] = 1.0
    poses[..., 7:] = 1.2
    with torch.no_grad():
        out = model(frames, None, indices, [instruction], camera_poses=poses)
    assert torch.isfinite(out.heatmap_logits).all() and torch.isfinite(out.action_logits).all()
    k = model.config.num_keyframes
    assert out.heatmap_logits.shape[:2] == (b, k)

    # the prompt it built: every word known, the instruction's words in order
    th, tw = out.token_grid
    frames_used = [[*out.keyframe_indices[0].tolist(), int(out.current_index[0])]]
    enc = model.qwen.build_inputs([instruction], frames_used, th * tw, (th, tw))
    ids = enc["input_ids"][0].tolist()
    assert tokenizer.unk_token_id not in ids
    text = tokenizer.decode(ids)
    assert f"instruction : {normalise(instruction)}" in text
