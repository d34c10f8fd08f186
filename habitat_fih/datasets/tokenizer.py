"""The bundled data's tokenizer: a word-level Hugging Face tokenizer built from the train split.

    python -m habitat_fih.datasets.tokenizer [--data data]

(re)writes ``<data>/tokenizer/synthetic_r2r/`` from ``<data>/datasets/synthetic_r2r/v1/train``
without regenerating the houses; ``python -m habitat_fih.datasets.generate`` (``make data``)
writes it too, from the episodes it has just generated. The folder is a Hugging Face tokenizer
(``tokenizer.json``, ``tokenizer_config.json``, ``chat_template.jinja``; transformers >= 5 writes
no ``special_tokens_map.json``): ``AutoTokenizer.from_pretrained(folder)`` loads it. The tiny
fih configs (``fih/synthetic_tiny`` and so ``make run`` and the learning experiment) read it
through ``habitat_baselines.fih.model.tokenizer_dir``; real runs keep Qwen2.5-VL's own tokenizer.

The tokenizer (`build_bundled_tokenizer`):

* lower-cases, splits into words and punctuation runs (``\\w+|[^\\w\\s]+``, the ``Whitespace``
  pre-tokenizer) and numbers into single digits, so the prompt's frame indices ("Frame 12:")
  need only ``0``..``9``;
* has a ``WordLevel`` vocabulary: the sorted tokens of the train instructions, of the prompt the
  Qwen backbone builds around them (chat roles, system prompt, frame markers, question) and the
  ten digits, at ids 0..N-1; any other word is ``[UNK]``;
* holds Qwen's special tokens at the ids of the tiny model config (``<|image_pad|>`` 180,
  ``<|video_pad|>`` 181, ``<|vision_start|>`` 182, ``<|vision_end|>`` 183, ``<|im_start|>``
  184, ``<|im_end|>`` 185 = eos, ``<|endoftext|>`` 186 = pad, ``[UNK]`` 187) and the ChatML
  chat template of `CHATML_FALLBACK_TEMPLATE`;
* decodes to the normalised text (`normalise`: lower case, one space between tokens).

It is deterministic (sorted vocabulary, no timestamps): the same train split and transformers /
tokenizers versions give byte-identical files. The VLN-CE ``instruction_vocab`` inside the
episode files (`habitat_fih.datasets.episodes.build_vocab`) is the dataset format's own
word list (``instruction_tokens``); the model never reads it.
"""

from __future__ import annotations

import argparse
import filecmp
import os
import re
import shutil
import uuid
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # tokenizers / transformers / torch load only when a tokenizer is built
    from transformers import PreTrainedTokenizerFast

    from habitat_fih.models.config import FIHModelConfig

__all__ = [
    "DIGITS",
    "TOKENIZER_FILES",
    "UNK_TOKEN",
    "build_bundled_tokenizer",
    "bundled_tokenizer_dir",
    "main",
    "normalise",
    "prompt_words",
    "read_train_instructions",
    "write_bundled_tokenizer",
]

UNK_TOKEN = "[UNK]"
DIGITS = tuple(str(d) for d in range(10))
#: What `write_bundled_tokenizer` writes (transformers 5.x's save_pretrained of a fast tokenizer).
TOKENIZER_FILES = ("chat_template.jinja", "tokenizer.json", "tokenizer_config.json")
#: The chat roles `QwenVLBackbone.build_inputs` uses (system, user turn, generation prompt).
_ROLES = ("system", "user", "assistant")
#: Literal text of `QwenVLBackbone._user_text` besides the configurable markers.
_PROMPT_LITERALS = ("Instruction:",)
_DATASET = "synthetic_r2r"


def _pre_tokenizer() -> Any:
    from tokenizers import pre_tokenizers

    return pre_tokenizers.Sequence(
        [pre_tokenizers.Whitespace(), pre_tokenizers.Digits(individual_digits=True)]
    )


def _split(texts: Iterable[str]) -> set[str]:
    pre = _pre_tokenizer()
    return {tok for text in texts for tok, _ in pre.pre_tokenize_str(text.lower())}


def normalise(text: str) -> str:
    """`text` as the bundled tokenizer decodes it: lower case, its words, punctuation runs and
    single digits joined by one space (``"Turn left, 12."`` -> ``"turn left , 1 2 ."``)."""
    pre = _pre_tokenizer()
    return " ".join(tok for tok, _ in pre.pre_tokenize_str(text.lower()))


def prompt_words(config: FIHModelConfig) -> list[str]:
    """The texts of the prompt `QwenVLBackbone.build_inputs` wraps around an instruction (chat
    roles, system prompt, keyframe / current-view markers, question) for `config.qwen`."""
    q = config.qwen
    return [
        *_ROLES,
        q.system_prompt,
        q.frame_marker.format(index=0),
        q.current_marker.format(index=0),
        *_PROMPT_LITERALS,
        q.question,
    ]


def _special_ids(config: FIHModelConfig) -> dict[str, int]:
    """Qwen's special tokens at the ids of ``config.qwen.model_config``: the vision ids, eos
    (``<|im_end|>``) and pad (``<|endoftext|>``) from the text config, ``<|im_start|>`` and
    ``[UNK]`` at the lowest free ids from the lowest of those up."""
    cfg = config.qwen.model_config
    if cfg is None:
        raise ValueError("the bundled tokenizer is only for random-init configs (qwen.model_config)")
    text = cfg.get("text_config", {})
    vocab_size = int(text["vocab_size"])
    special = {
        "<|image_pad|>": int(cfg["image_token_id"]),
        "<|video_pad|>": int(cfg["video_token_id"]),
        "<|vision_start|>": int(cfg["vision_start_token_id"]),
        "<|vision_end|>": int(cfg["vision_end_token_id"]),
    }
    if text.get("eos_token_id") is not None:
        special["<|im_end|>"] = int(text["eos_token_id"])
    if text.get("pad_token_id") is not None:
        special["<|endoftext|>"] = int(text["pad_token_id"])
    if len(set(special.values())) != len(special):
        raise ValueError(f"special token ids collide in qwen.model_config: {special}")
    low = min(special.values())
    free = [i for i in range(low, vocab_size) if i not in special.values()]
    for name in ("<|im_start|>", "<|im_end|>", "<|endoftext|>", UNK_TOKEN):
        if name not in special:
            if not free:
                raise ValueError(f"vocab_size {vocab_size} leaves no id for {name}")
            special[name] = free.pop(0)
    if max(special.values()) >= vocab_size:
        raise ValueError(f"special ids {special} do not fit vocab_size {vocab_size}")
    return special


def build_bundled_tokenizer(
    train_instructions: Iterable[str],
    prompt_words: Iterable[str],
    config: FIHModelConfig,
) -> PreTrainedTokenizerFast:
    """The word-level tokenizer of the module docstring for `config` (a random-init config:
    the special ids come from ``config.qwen.model_config``).

    Args:
        train_instructions: the train split's instruction texts.
        prompt_words: texts of the prompt around an instruction (see `prompt_words`); split
            like the instructions.
        config: the model config whose special token ids the tokenizer must use.

    Raises:
        ValueError: the vocabulary does not fit below the lowest special id.
    """
    from tokenizers import Tokenizer, models, normalizers
    from transformers import PreTrainedTokenizerFast

    from habitat_fih.models.qwen_vl_backbone import CHATML_FALLBACK_TEMPLATE

    special = _special_ids(config)
    words = sorted(_split(train_instructions) | _split(prompt_words) | set(DIGITS))
    if len(words) > min(special.values()):
        raise ValueError(
            f"{len(words)} words do not fit below the lowest special id {min(special.values())}"
        )
    vocab = {w: i for i, w in enumerate(words)}
    vocab.update(special)
    backend = Tokenizer(models.WordLevel(vocab=vocab, unk_token=UNK_TOKEN))
    backend.normalizer = normalizers.Lowercase()
    backend.pre_tokenizer = _pre_tokenizer()
    others = ["<|image_pad|>", "<|video_pad|>", "<|vision_start|>", "<|vision_end|>", "<|im_start|>"]
    text_cfg = config.qwen.model_config.get("text_config", {})  # type: ignore[union-attr]
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=backend,
        unk_token=UNK_TOKEN,
        pad_token="<|endoftext|>",
        eos_token="<|im_end|>",
        additional_special_tokens=others,
        padding_side=config.qwen.padding_side,
        clean_up_tokenization_spaces=False,  # decode = tokens joined by one space (`normalise`)
        model_max_length=int(text_cfg.get("max_position_embeddings", 512)),
    )
    tokenizer.chat_template = CHATML_FALLBACK_TEMPLATE
    for name, idx in special.items():  # added tokens keep their ids; make sure
        got = tokenizer.convert_tokens_to_ids(name)
        if got != idx:
            raise RuntimeError(f"special token {name} got id {got}, expected {idx}")
    return tokenizer


def bundled_tokenizer_dir(data: str = "data", name: str = _DATASET) -> str:
    """Where the tokenizer of dataset `name` lives under the data root `data`."""
    return os.path.join(data, "tokenizer", name)


def read_train_instructions(data: str = "data", name: str = _DATASET) -> list[str]:
    """The instruction texts of ``<data>/datasets/<name>/v1/train/train.json.gz``, in file order."""
    from habitat_fih.datasets.episodes import read_json_gz

    path = os.path.join(data, "datasets", name, "v1", "train", "train.json.gz")
    return [ep["instruction"]["instruction_text"] for ep in read_json_gz(path)["episodes"]]


def _same_files(a: str, b: str) -> bool:
    names = sorted(os.listdir(a))
    if names != sorted(os.listdir(b)):
        return False
    _, mismatch, errors = filecmp.cmpfiles(a, b, names, shallow=False)
    return not mismatch and not errors


def write_bundled_tokenizer(
    train_instructions: Sequence[str], out_dir: str, config: FIHModelConfig | None = None
) -> str:
    """Build the tokenizer for `config` (default: ``FIHModelConfig.tiny()``) and save it in HF
    format into `out_dir`, atomically: saved into a temporary folder next to it, which then
    takes the place of `out_dir` (the old folder is renamed aside, then removed; a kill in
    between leaves no `out_dir`, and the next call removes the leftovers). An `out_dir` that
    already holds identical bytes is left untouched. Call it holding the data root's lock
    (`habitat_fih.utils.folder_lock.locked`, as `generate` and `main` do). Returns `out_dir`."""
    from habitat_fih.models.config import FIHModelConfig

    config = config or FIHModelConfig.tiny()
    tokenizer = build_bundled_tokenizer(train_instructions, prompt_words(config), config)
    target = os.path.abspath(out_dir)
    parent, name = os.path.split(target)
    os.makedirs(parent, exist_ok=True)
    _remove_leftovers(parent, name)
    tmp = os.path.join(parent, f".{name}.{uuid.uuid4().hex}.tmp")
    os.mkdir(tmp)  # mode 0777 minus the umask, like the files save_pretrained writes
    try:
        tokenizer.save_pretrained(tmp)
        if os.path.isdir(target) and _same_files(tmp, target):
            shutil.rmtree(tmp)
            return out_dir
        old = None
        if os.path.exists(target):  # a directory cannot be replaced in one rename: swap
            old = os.path.join(parent, f".{name}.{uuid.uuid4().hex}.old")
            os.replace(target, old)
        os.replace(tmp, target)
        if old is not None:
            shutil.rmtree(old)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out_dir


def _remove_leftovers(parent: str, name: str) -> None:
    """Temporary / swapped-out folders of `name` that a killed `write_bundled_tokenizer` left
    (callers hold the data root's lock, so no other writer owns them)."""
    pattern = re.compile(rf"^\.{re.escape(name)}\.[0-9a-f]{{32}}\.(tmp|old)$")
    for entry in sorted(os.listdir(parent)):
        path = os.path.join(parent, entry)
        if pattern.match(entry) and os.path.isdir(path):
            shutil.rmtree(path)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default="data", help="data root (default: data)")
    args = parser.parse_args(argv)
    from habitat_fih.utils.folder_lock import RunFolderLockedError, locked

    try:
        instructions = read_train_instructions(args.data)
    except (FileNotFoundError, ValueError) as err:
        parser.exit(2, f"{parser.prog}: error: {err} (run python -m habitat_fih.datasets.generate)\n")
    try:
        with locked(args.data, hint="use another --data"):  # the generator's lock
            out = write_bundled_tokenizer(instructions, bundled_tokenizer_dir(args.data))
    except RunFolderLockedError as err:
        parser.exit(2, f"{parser.prog}: error: {err}\n")
    print(f"tokenizer: {out} ({len(instructions)} train instructions)")


if __name__ == "__main__":
    main()
