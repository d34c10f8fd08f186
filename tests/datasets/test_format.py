"""Round trip through habitat's R2RVLN-v1 dataset; split hygiene; clear errors for bad files."""

from __future__ import annotations

import gzip
import json

import numpy as np
import pytest
from habitat.core.registry import registry

from habitat_fih.config import get_config
from habitat_fih.datasets.episodes import MAX_TOKENS, read_json_gz, tokenize, write_split
from habitat_fih.datasets.houses import load_metadata

from .conftest import EPISODES, SCENES, SPLITS, split_data, split_gt


@pytest.mark.parametrize("split", SPLITS)
def test_habitat_r2r_dataset_loads_split(bundled, split, monkeypatch):
    monkeypatch.chdir(bundled.parent)
    cfg = get_config("benchmark/nav/fih_vlnce_synthetic", [f"habitat.dataset.split={split}"])
    dataset = registry.get_dataset("R2RVLN-v1")(config=cfg.habitat.dataset)
    raw = split_data(split)
    assert len(dataset.episodes) == len(raw["episodes"])
    ep = dataset.episodes[0]
    assert ep.scene_id.startswith("data/scene_datasets/fih_synthetic/house_")
    assert ep.instruction.instruction_text == raw["episodes"][0]["instruction"]["instruction_text"]
    assert set(raw["instruction_vocab"]["word_list"]) <= set(dataset.instruction_vocab.word_list)
    for e in dataset.episodes:
        assert (bundled.parent / e.scene_id).is_file()


def test_splits_disjoint_and_unseen_scenes(bundled):
    ids, keys, scenes = {}, {}, {}
    for split in SPLITS:
        eps = split_data(split)["episodes"]
        ids[split] = {e["episode_id"] for e in eps}
        keys[split] = {(e["scene_id"], tuple(e["start_position"]), tuple(e["goals"][0]["position"])) for e in eps}
        scenes[split] = {e["scene_id"] for e in eps}
        assert len(ids[split]) == len(eps)
        assert set(split_gt(split)) == {str(i) for i in ids[split]}
    for a in SPLITS:
        for b in SPLITS:
            if a < b:
                assert not ids[a] & ids[b] and not keys[a] & keys[b]
    assert not scenes["val_unseen"] & scenes["train"]
    assert scenes["val_seen"] <= scenes["train"]
    assert len(split_data("train")["episodes"]) >= 200 and len(split_data("val_seen")["episodes"]) >= 40


def test_tokens_vocab_shared_and_padded(bundled):
    vocab = split_data("train")["instruction_vocab"]["word_list"]
    assert vocab[:2] == ["<PAD>", "<UNK>"]
    for split in SPLITS:
        data = split_data(split)
        assert data["instruction_vocab"]["word_list"] == vocab
        for ep in data["episodes"][:20]:
            toks = ep["instruction"]["instruction_tokens"]
            assert len(toks) == MAX_TOKENS
            words = [vocab[t] for t in toks if t != 0]
            assert words == tokenize(ep["instruction"]["instruction_text"])


def test_size_budget(bundled):
    """The bundled data (scenes + episodes) stays small; trainer outputs that runs write under
    data/fih/ (git-ignored) are not bundled data."""
    outputs = bundled / "fih"
    files = [p for p in bundled.rglob("*") if p.is_file() and outputs not in p.parents]
    total = sum(p.stat().st_size for p in files)
    assert any(p.suffix == ".glb" for p in files) and total < 25e6, total


def test_scene_metadata(bundled):
    for glb in sorted((SCENES / "fih_synthetic").glob("*.glb")):
        meta = load_metadata(str(glb))
        names = {r["name"] for r in meta["rooms"]}
        assert {"bedroom", "bathroom", "kitchen", "living room", "hallway"} <= names
        for r in meta["rooms"]:
            assert len(r["polygon"]) == 4
        labels = {o["label"] for o in meta["objects"]}
        assert {"bed", "sofa", "toilet", "fridge"} <= labels
        for o in meta["objects"]:
            assert np.all(np.asarray(o["bbox"]["max"]) > np.asarray(o["bbox"]["min"]))
            assert o["color"]
        assert len(meta["levels"]) in (1, 2) and (len(meta["levels"]) == 2) == bool(meta["stairs"])


def test_missing_or_malformed_files_fail_clearly(tmp_path):
    with pytest.raises(FileNotFoundError, match="episode file not found"):
        read_json_gz(str(tmp_path / "nope.json.gz"))
    bad = tmp_path / "bad.json.gz"
    bad.write_bytes(b"not gzip")
    with pytest.raises(ValueError, match="malformed episode file"):
        read_json_gz(str(bad))
    with pytest.raises(FileNotFoundError, match="scene metadata not found"):
        load_metadata(str(tmp_path / "house.glb"))


def test_write_split_is_deterministic(tmp_path):
    ep = {"episode_id": 1, "instruction": {"instruction_text": "Walk to the sofa.", "instruction_tokens": []}}
    a = write_split(str(tmp_path / "a"), "train", [ep])
    b = write_split(str(tmp_path / "b"), "train", [ep])
    assert open(a, "rb").read() == open(b, "rb").read()
    with gzip.open(a, "rt") as f:
        assert json.load(f)["episodes"][0]["instruction"]["instruction_tokens"][:4] == [5, 4, 3, 2]
    assert EPISODES.name == "v1"
