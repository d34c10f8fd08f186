"""scripts/fit_buffer.py's held-out split and instruction-shuffle control, on hand-built samples
with a known answer."""

from __future__ import annotations

import collections
import dataclasses

import numpy as np
from repo_scripts import load_script  # tests/helpers (on sys.path via tests/conftest.py)


def _module():
    return load_script("scripts/fit_buffer.py")


@dataclasses.dataclass
class _Item:
    instruction: str
    step: int


def _items() -> list[_Item]:
    # 10 instructions with 3, 4, ..., 12 samples each: 75 samples
    return [_Item(f"instruction {k}", t) for k in range(10) for t in range(3 + k)]


def test_split_by_instruction_holds_out_whole_instructions():
    module = _module()
    items = _items()
    held, train = module.split_items(items, 20, "instruction", np.random.default_rng(0))
    held_texts = {item.instruction for item in held}
    train_texts = {item.instruction for item in train}
    assert not held_texts & train_texts
    assert len(held) + len(train) == len(items)
    # every held-out instruction brings all of its samples
    sizes = collections.Counter(item.instruction for item in held)
    assert all(sizes[text] == 3 + int(text.split()[1]) for text in held_texts)
    # whole instructions are added until at least 20 are held out: dropping the last added
    # one (any one, as the smallest is 3) leaves fewer than 20 + 12
    assert 20 <= len(held) < 20 + 12


def test_split_by_sample_is_a_random_partition():
    module = _module()
    items = _items()
    held, train = module.split_items(items, 20, "sample", np.random.default_rng(0))
    assert len(held) == 20 and len(train) == 55
    assert sorted(map(id, held + train)) == sorted(map(id, items))


def test_shuffled_instructions_permutes_texts_and_keeps_the_rest():
    module = _module()
    items = _items()
    shuffled = module.shuffled_instructions(items, np.random.default_rng(1))
    assert [s.step for s in shuffled] == [i.step for i in items]
    assert sorted(s.instruction for s in shuffled) == sorted(i.instruction for i in items)
    moved = sum(s.instruction != i.instruction for s, i in zip(shuffled, items, strict=True))
    # a random permutation of 75 samples over 10 texts keeps at most a small share in place
    assert moved > len(items) // 2
