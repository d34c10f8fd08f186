"""``fih-infer`` (= ``python -m habitat_fih.infer``): frame-indexed heatmaps for a video.

    fih-infer --video walk.mp4 --instruction "go past the sofa and stop at the door"
    fih-infer --video frames/ --instruction "..." --checkpoint data/fih/.../ckpt.1.pth
    fih-infer --video clip.mp4 --instruction "..." --heatmaps geometry --geometry-from clip.geometry.npz
    fih-infer --batch a.mp4 b.mp4 c.mp4 --instruction "..."
    fih-infer --benchmark --video walk.mp4 --instruction "..."
    fih-infer --video walk.mp4 --instruction "..." --qwen-dir ... --offload all   # small GPU

Outputs (`habitat_fih.infer.outputs`) go to ``<output_dir>/<video name>/``. Exit status: 0 done;
2 bad input (one line on stderr naming the value and what was expected; nothing written);
1 when some videos of a ``--batch`` failed (the others are written; the summary table and
``<output_dir>/batch_summary.json`` name each failure). ``FIH_TRACEBACK=1`` shows tracebacks.
Settings and the config file: `habitat_fih.infer.settings`; the model's source:
`habitat_fih.infer.engine`.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any, NoReturn

from habitat_fih.infer.settings import ALGORITHMS, InferInputError, load_settings

__all__ = ["main"]

PROG = "fih-infer"


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:  # one line, exit 2
        self.exit(2, f"{PROG}: {message} (see {PROG} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog=PROG, description=__doc__.split("\n\n")[0] if __doc__ else None)
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--video", help="a video file, a folder of images or a glob of images")
    src.add_argument("--batch", nargs="+", metavar="VIDEO", help="several videos, one folder each")
    p.add_argument("--instruction", required=True, help="the navigation instruction")
    p.add_argument("--algorithm", choices=ALGORITHMS, default=None, help="keyframe sampler")
    p.add_argument("--num-keyframes", type=int, default=None, help="K (default: the model's)")
    p.add_argument("--max-frames", type=int, default=None, help="frames taken (default 32)")
    p.add_argument("--benchmark", action="store_true", help="compare the three samplers")
    p.add_argument("--config", default=None, help="yaml settings (habitat_fih.infer.settings)")
    p.add_argument("--checkpoint", default=None, help="an fih trainer checkpoint ckpt.<i>.pth")
    p.add_argument("--vggt-dir", default=None, help="local VGGT-1B directory")
    p.add_argument("--dinov3-dir", default=None, help="local DINOv3 directory (HF layout)")
    p.add_argument("--qwen-dir", default=None, help="local Qwen2.5-VL directory (HF layout)")
    p.add_argument("--llm", choices=("3b", "7b"), default=None, help="full-size LLM (default 7b)")
    p.add_argument("--heatmaps", choices=("model", "geometry"), default=None)
    p.add_argument(
        "--geometry-from",
        default=None,
        metavar="SIDECAR",
        help="known cameras + depth of the video (a .geometry.npz sidecar)",
    )
    p.add_argument("--output-dir", default=None, help="default ./outputs")
    p.add_argument("--device", default=None, help="auto (default), cpu, cuda, cuda:<i>")
    p.add_argument(
        "--offload",
        default=None,
        metavar="COMPONENTS",
        help="keep vggt,dinov3,llm (comma-separated, or all) on CPU except while "
        "each runs: less GPU memory, slower (habitat_fih.models.offload)",
    )
    p.add_argument(
        "--current-frame",
        choices=("last", "all"),
        default=None,
        help="all: also heatmaps.mp4 with every frame as the current view",
    )
    return p


def _flags(args: argparse.Namespace) -> dict[str, Any]:
    return {
        "algorithm": args.algorithm,
        "num_keyframes": args.num_keyframes,
        "max_frames": args.max_frames,
        "checkpoint": args.checkpoint,
        "vggt_dir": args.vggt_dir,
        "dinov3_dir": args.dinov3_dir,
        "qwen_dir": args.qwen_dir,
        "llm": args.llm,
        "heatmaps": args.heatmaps,
        "geometry_from": args.geometry_from,
        "output_dir": args.output_dir,
        "device": args.device,
        "offload": args.offload,
        "current_frame": args.current_frame,
    }


def _folder_names(videos: list[str]) -> list[str]:
    """One output folder name per video (`video_name`), ``-2``, ``-3``, ... on repeats."""
    from habitat_fih.infer.video import video_name

    names: list[str] = []
    for video in videos:
        base = video_name(video)
        name, n = base, 2
        while name in names:
            name, n = f"{base}-{n}", n + 1
        names.append(name)
    return names


def _one(
    engine: Any,
    source: str,
    instruction: str,
    name: str | None,
    extra: dict[str, Any],
    video: Any = None,
) -> dict[str, Any]:
    """Read (unless given), run and write one video; the summary row."""
    from habitat_fih.infer.outputs import write_result

    start = time.perf_counter()
    if video is None:  # a batch: this video's stages only (the build's time is in `extra`)
        engine.monitor.reset()
        video = engine.read(source)
    result = engine.run(video, instruction)
    folder = Path(engine.settings.output.output_dir) / (name or video.name)
    extra = {**extra, "seconds_before_writing": time.perf_counter() - start}
    with engine.monitor.stage("write"):  # in the printed table (metrics.json is written in it)
        write_result(result, folder, extra, engine.settings.output.fps)
    return {
        "video": source,
        "status": "ok",
        "folder": str(folder),
        "keyframes": result.last.keyframes,
        "current": result.last.current,
        "seconds": round(time.perf_counter() - start, 3),
    }


def _summary_table(rows: list[dict[str, Any]]) -> str:
    head = ["video", "status", "keyframes", "seconds", "folder / error"]
    body = [
        [
            r["video"],
            r["status"],
            " ".join(str(k) for k in r.get("keyframes", [])),
            f"{r['seconds']:.2f}" if "seconds" in r else "",
            r.get("folder") or r.get("error", ""),
        ]
        for r in rows
    ]
    widths = [max(len(str(x)) for x in col) for col in zip(head, *body, strict=True)]
    lines = [
        " | ".join(str(x).ljust(w) for x, w in zip(line, widths, strict=True))
        for line in [head, *body]
    ]
    lines.insert(1, "-+-".join("-" * w for w in widths))
    return "\n".join(lines)


def run(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    settings = load_settings(args.config, _flags(args))
    if args.batch and settings.geometry_from:
        raise InferInputError(
            "--geometry-from describes one video: use it with --video, not --batch"
        )
    if args.benchmark and not args.video:
        raise InferInputError("--benchmark compares the samplers on one video: give --video")

    from habitat_fih.infer.engine import InferenceEngine

    engine = InferenceEngine(settings)
    # one video: read it (and check K against it) before the model is built, so a bad video
    # fails fast; a batch builds first (each video may fail on its own)
    video = engine.read(args.video) if args.video else None
    if video is not None:
        engine.check_keyframes(video)
    engine.build()
    extra = {
        "model_source": engine.source.describe(),
        # what the maps are: a model trained on several target kinds gives its first kind
        "map_kind": engine.config.target_kinds[0]
        if settings.heatmaps == "model"
        else "covisibility",
        "device": str(engine.device),
        "build_seconds": engine.monitor.summary()["stages"].get("build", {}).get("total_s", 0.0),
        "settings": {
            "max_frames": settings.video.max_frames,
            "selection": settings.video.selection,
            "num_keyframes": settings.num_keyframes or engine.config.num_keyframes,
            "current_frame": settings.current_frame,
            "geometry_from": settings.geometry_from,
            "offload": list(engine.config.offload),
        },
    }
    if args.benchmark:
        from habitat_fih.infer.benchmark import benchmark_table, run_benchmark
        from habitat_fih.utils import atomic_write_bytes

        rows = run_benchmark(engine, video, args.instruction)
        print(benchmark_table(rows))
        out = Path(settings.output.output_dir) / f"{video.name}.benchmark.json"
        atomic_write_bytes(
            out,
            (json.dumps({"video": args.video, "rows": rows, **extra}, indent=2) + "\n").encode(),
        )
        print(f"{PROG}: benchmark written to {out}")
        return 0
    if args.video:
        row = _one(engine, args.video, args.instruction, None, extra, video)
        print(engine.monitor.table())
        print(
            f"{PROG}: {row['folder']}: keyframes {row['keyframes']} on frame {row['current']} "
            f"({row['seconds']:.2f} s; model: {engine.source.describe()})"
        )
        return 0
    return _batch(engine, args.batch, args.instruction, extra)


def _batch(engine: Any, videos: list[str], instruction: str, extra: dict[str, Any]) -> int:
    from tqdm import tqdm

    from habitat_fih.utils import atomic_write_bytes

    names = _folder_names(videos)
    rows = []
    for source, name in tqdm(list(zip(videos, names, strict=True)), desc="videos", file=sys.stderr):
        try:
            row = _one(engine, source, instruction, name, extra)
        except Exception as exc:  # noqa: BLE001 - one failing video must not stop the batch
            message = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            kind = "" if isinstance(exc, InferInputError) else f"{type(exc).__name__}: "
            row = {"video": source, "status": "failed", "error": kind + message}
        rows.append(row)
    print(_summary_table(rows))
    summary = Path(engine.settings.output.output_dir) / "batch_summary.json"
    atomic_write_bytes(summary, (json.dumps({"videos": rows, **extra}, indent=2) + "\n").encode())
    failed = [r for r in rows if r["status"] != "ok"]
    print(f"{PROG}: {len(rows) - len(failed)} of {len(rows)} videos written; summary {summary}")
    return 1 if failed else 0


def main(argv: list[str] | None = None) -> int:
    try:
        return run(argv)
    except SystemExit as exit_:  # argparse: --help (0) or a bad flag (2, one line printed)
        return exit_.code if isinstance(exit_.code, int) else 2
    except InferInputError as err:
        if os.environ.get("FIH_TRACEBACK"):
            raise
        print(f"{PROG}: {err}", file=sys.stderr)
        return 2
