"""The parity figures file (``outputs/parity/figures.json``) and the README table made from it.

Standard library only, so the table can be printed on the host too:
``python3 tests_habitat_sim/figures.py outputs/parity/figures.json``.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path


def merge_into(path: Path, new: dict) -> dict:
    """Merge `new` ({scene: {figure: value}}) into the json at `path` (atomically); returns it."""
    old = json.loads(path.read_text()) if path.is_file() else {}
    for scene, figs in new.items():
        old.setdefault(scene, {}).update(figs)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(old, indent=1, sort_keys=True))
    tmp.replace(path)
    return old


def table(figures: dict) -> str:
    """The README's markdown table of the figures ({scene: {figure: value}})."""
    rows = [
        ("navigable agreement, lowest floor grid", "nav_agree_floor", "{:.2%}"),
        ("navigable agreement, surface grid", "nav_agree_surface", "{:.2%}"),
        ("geodesic rel. diff. median / max (pairs)", None, None),
        ("depth within 1 cm (off edges)", "depth_within_1cm", "{:.2%}"),
        ("RGB mean abs. diff. R / G / B", None, None),
        ("50-action sequences ending within 10 cm (x-z)", "slide_within_10cm", "{:.0%}"),
        ("end position after 50 actions, median / max x-z (m)", None, None),
        ("forward steps from the same pose within 1 cm", "step_within_1cm", "{:.1%}"),
        ("agent y above FIH floor (habitat navmesh) max (m)", "slide_max_dy", "{:.3f}"),
        ("VLN-CE metrics, max diff. (same trajectory)", "metrics_max_diff", "{:.2%}"),
        ("covisibility targets IoU median / min (same poses)", None, None),
    ]
    scenes = [s for s in figures if not s.startswith("_")]
    out = ["| figure | " + " | ".join(scenes) + " |", "|---" * (len(scenes) + 1) + "|"]
    for label, key, fmt in rows:
        cells = []
        for s in scenes:
            f = figures[s]
            if label.startswith("geodesic"):
                v = (f"{f['geo_median']:.2%} / {f['geo_max']:.2%} ({int(f['geo_pairs'])})"
                     if "geo_median" in f else "")
                if f.get("geo_detour_longer"):
                    v += (f"; {f['geo_max_same_route']:.2%} without the "
                          f"{len(f['geo_detour_longer'])} longer Detour routes")
            elif label.startswith("RGB"):
                v = " / ".join(f"{x:.2f}" for x in f["rgb_mad"]) if "rgb_mad" in f else ""
                if f.get("untextured"):
                    v = "- (no materials)"
            elif label.startswith("end position"):
                v = (f"{f['slide_median_xz']:.3f} / {f['slide_max_xz']:.3f}"
                     if "slide_max_xz" in f else "")
            elif label.startswith("covisibility"):
                v = (f"{f['target_iou_median']:.3f} / {f['target_iou_min']:.3f}"
                     if "target_iou_median" in f else "")
            else:
                v = fmt.format(f[key]) if key in f else ""
            cells.append(v)
        out.append(f"| {label} | " + " | ".join(cells) + " |")
    return "\n".join(out)


if __name__ == "__main__":
    print(table(json.loads(Path(sys.argv[1]).read_text())))
