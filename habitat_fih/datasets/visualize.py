"""Visual check of one episode: top-down map with rooms, objects and paths, plus RGB/depth frames.

    python -m habitat_fih.datasets.visualize --episode 100003 --split val_seen [--data data]
                                             [--out outputs/vis] [--frames 8]

Writes ``<out>/<split>_<id>_map.png`` (per level: navigable area, room outlines and names, object
boxes and labels, the reference path in blue, the oracle path from ``{split}_gt.json.gz`` in
orange, start green, goal red with its 3 m success circle) and ``<out>/<split>_<id>_frames.png``
(RGB above depth at evenly spaced oracle steps, with the instruction as the caption), rendered with
FIHSim-v0's ray caster at the VLN-CE camera (1.25 m, hfov 90).
"""

from __future__ import annotations

import argparse
import os
import textwrap

import numpy as np
from PIL import Image, ImageDraw

from habitat_fih.datasets.episodes import read_json_gz
from habitat_fih.datasets.houses import load_metadata

__all__ = ["render_map", "render_frames", "main"]

_ROOM_COLORS = {
    "bedroom": (186, 205, 232), "bathroom": (190, 232, 226), "kitchen": (245, 222, 170),
    "living room": (222, 200, 236), "dining room": (240, 200, 190), "office": (205, 225, 190),
    "hallway": (225, 225, 225), "staircase": (200, 190, 170),
}


def _yaw_from_xyzw(q) -> float:
    return float(2 * np.arctan2(q[1], q[3]))


def _poses(locations: list[list[float]], actions: list[int], yaw0: float, turn_deg: float = 15.0):
    yaw = yaw0
    out = []
    for loc, a in zip(locations, actions, strict=True):
        out.append((np.asarray(loc, dtype=np.float64), yaw))
        if a == 2:
            yaw += np.radians(turn_deg)
        elif a == 3:
            yaw -= np.radians(turn_deg)
    return out


def render_map(meta: dict, nav, episode: dict, gt: dict | None, ppm: int = 40) -> Image.Image:
    """Top-down map(s) of the episode's house, one panel per level, side by side."""
    panels = []
    lower, upper = nav.get_bounds()
    xs = [c for r in meta["rooms"] for c in (r["rect"][0], r["rect"][2])]
    zs = [c for r in meta["rooms"] for c in (r["rect"][1], r["rect"][3])]
    x0, x1, z0, z1 = min(xs) - 0.5, max(xs) + 0.5, min(zs) - 0.5, max(zs) + 0.5
    w, h = int((x1 - x0) * ppm), int((z1 - z0) * ppm)

    def px(p) -> tuple[float, float]:
        return ((p[0] - x0) * ppm, (p[2] - z0) * ppm)

    for level in meta["levels"]:
        y = level["floor_y"]
        img = Image.new("RGB", (w, h + 24), (40, 40, 40))
        d = ImageDraw.Draw(img)
        for r in meta["rooms"]:
            if r["level"] != level["index"]:
                continue
            rx0, rz0, rx1, rz1 = r["rect"]
            d.rectangle([px((rx0, 0, rz0)), px((rx1, 0, rz1))], fill=_ROOM_COLORS.get(r["name"], (200, 200, 200)))
        # navigable cells of this level (within 0.5 m of its floor, stairs drawn on the lower level)
        sel = (nav.node_y > y - 0.3) & (nav.node_y < y + (2.9 if level["index"] == 0 else 0.3))
        big = nav.node_island == int(np.argmax(nav.island_sizes))
        mask = np.zeros((h, w), dtype=bool)
        cx = ((nav.node_cx[sel & big] - x0) * ppm).astype(int)
        cz = ((nav.node_cz[sel & big] - z0) * ppm).astype(int)
        ok = (cx >= 0) & (cx < w) & (cz >= 0) & (cz < h)
        for dx in range(-1, 2):
            for dz in range(-1, 2):
                mask[np.clip(cz[ok] + dz, 0, h - 1), np.clip(cx[ok] + dx, 0, w - 1)] = True
        arr = np.asarray(img).copy()
        arr[:h][mask] = (arr[:h][mask] * 0.55 + np.array([255, 255, 255]) * 0.45).astype(np.uint8)
        img = Image.fromarray(arr)
        d = ImageDraw.Draw(img)
        for r in meta["rooms"]:
            if r["level"] == level["index"]:
                rx0, rz0, rx1, rz1 = r["rect"]
                d.rectangle([px((rx0, 0, rz0)), px((rx1, 0, rz1))], outline=(0, 0, 0), width=2)
                d.text(px((rx0 + 0.15, 0, rz0 + 0.15)), r["name"], fill=(0, 0, 0))
        goal_obj = episode["info"].get("goal_object_id")
        for o in meta["objects"]:
            if o["level"] != level["index"]:
                continue
            lo, hi = o["bbox"]["min"], o["bbox"]["max"]
            color = (200, 0, 0) if o["id"] == goal_obj else (90, 70, 50)
            d.rectangle([px(lo), px(hi)], outline=color, width=2 if o["id"] == goal_obj else 1)
            d.text(px(((lo[0] + hi[0]) / 2 - 0.3, 0, (lo[2] + hi[2]) / 2)), o["label"], fill=color)

        top = 2.9 if level["index"] == 0 else 0.3

        def on_level(p, y=y, top=top) -> bool:
            return (p[1] > y - 0.3) and (p[1] < y + top)

        def polyline(points, color, width, d=d) -> None:
            for a, b in zip(points[:-1], points[1:], strict=True):
                if on_level(a) or on_level(b):
                    d.line([px(a), px(b)], fill=color, width=width)

        if gt is not None:
            polyline(gt["locations"], (255, 140, 0), 3)
        polyline(episode["reference_path"], (0, 70, 255), 2)
        s, g = episode["start_position"], episode["goals"][0]["position"]
        if on_level(g):
            rad = episode["goals"][0]["radius"] * ppm
            gx, gz = px(g)
            d.ellipse([gx - rad, gz - rad, gx + rad, gz + rad], outline=(220, 0, 0), width=1)
            d.ellipse([gx - 6, gz - 6, gx + 6, gz + 6], fill=(220, 0, 0))
        if on_level(s):
            sx, sz = px(s)
            d.ellipse([sx - 6, sz - 6, sx + 6, sz + 6], fill=(0, 170, 0))
            yaw = _yaw_from_xyzw(episode["start_rotation"])
            d.line([(sx, sz), (sx - 18 * np.sin(yaw), sz - 18 * np.cos(yaw))], fill=(0, 120, 0), width=3)
        d.text((6, h + 6), f"level {level['index']} (floor y = {y} m)", fill=(255, 255, 255))
        panels.append(img)
    out = Image.new("RGB", (sum(p.width for p in panels) + 10 * (len(panels) - 1), panels[0].height), (0, 0, 0))
    x = 0
    for p in panels:
        out.paste(p, (x, 0))
        x += p.width + 10
    return out


def render_frames(mesh, episode: dict, gt: dict, n_frames: int = 8, size: int = 224) -> Image.Image:
    """RGB (top row) and depth (bottom row) at ``n_frames`` evenly spaced oracle steps."""
    from habitat_fih.sim.render import CameraSpec, RayCaster

    caster = RayCaster(mesh)
    spec = CameraSpec(size, size, 90.0)
    poses = _poses(gt["locations"], gt["actions"], _yaw_from_xyzw(episode["start_rotation"]))
    idx = np.linspace(0, len(poses) - 1, n_frames).round().astype(int)
    caption = textwrap.wrap(episode["instruction"]["instruction_text"], width=int(n_frames * size / 6.5))
    sheet = Image.new("RGB", (n_frames * size, 2 * size + 14 * len(caption) + 24), (255, 255, 255))
    d = ImageDraw.Draw(sheet)
    for j, k in enumerate(idx):
        pos, yaw = poses[k]
        c, s = np.cos(yaw), np.sin(yaw)
        pose = np.eye(4)
        pose[:3, :3] = [[c, 0, s], [0, 1, 0], [-s, 0, c]]
        pose[:3, 3] = pos + np.array([0.0, 1.25, 0.0])
        view = caster.render_view(pose, spec)
        sheet.paste(Image.fromarray(view.rgb), (j * size, 0))
        depth = np.clip(view.depth / 10.0, 0, 1)
        sheet.paste(Image.fromarray((255 * (1 - depth)).astype(np.uint8)).convert("RGB"), (j * size, size))
        d.text((j * size + 4, 4), f"step {k}", fill=(255, 255, 0))
    for i, line in enumerate(caption):
        d.text((6, 2 * size + 6 + 14 * i), line, fill=(0, 0, 0))
    d.text((6, 2 * size + 6 + 14 * len(caption)), f"episode {episode['episode_id']}  scene {episode['scene_id']}",
           fill=(90, 90, 90))
    caster.close()
    return sheet


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--episode", required=True, help="episode_id")
    parser.add_argument("--split", default="val_seen")
    parser.add_argument("--data", default="data", help="data root")
    parser.add_argument("--dataset", default="synthetic_r2r")
    parser.add_argument("--scene-dataset-dir", default=None, help="scenes dir (default: <data>/scene_datasets)")
    parser.add_argument("--out", default="outputs/vis")
    parser.add_argument("--frames", type=int, default=8)
    args = parser.parse_args(argv)
    from habitat_fih.sim.navigation import NavGrid
    from habitat_fih.sim.scene import load_scene

    root = os.path.join(args.data, "datasets", args.dataset, "v1", args.split)
    data = read_json_gz(os.path.join(root, f"{args.split}.json.gz"))
    eps = {str(e["episode_id"]): e for e in data["episodes"]}
    if args.episode not in eps:
        raise SystemExit(f"episode {args.episode} not in split {args.split} ({len(eps)} episodes, e.g. "
                         f"{', '.join(list(eps)[:5])})")
    ep = eps[args.episode]
    gt = read_json_gz(os.path.join(root, f"{args.split}_gt.json.gz")).get(args.episode)
    scene_path = os.path.join(args.scene_dataset_dir or os.path.join(args.data, "scene_datasets"), ep["scene_id"])
    meta = load_metadata(scene_path)
    mesh = load_scene(scene_path)
    nav = NavGrid.from_mesh(mesh.vertices, mesh.faces)
    os.makedirs(args.out, exist_ok=True)
    stem = os.path.join(args.out, f"{args.split}_{args.episode}")
    render_map(meta, nav, ep, gt).save(stem + "_map.png")
    if gt is not None:
        render_frames(mesh, ep, gt, args.frames).save(stem + "_frames.png")
    print(ep["instruction"]["instruction_text"])
    print(f"wrote {stem}_map.png" + (f" and {stem}_frames.png" if gt is not None else ""))


if __name__ == "__main__":
    main()
