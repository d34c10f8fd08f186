"""Closed-form tests of habitat_fih.geometry.surface: the working-resolution resampling.

Depths come from the analytic ray caster in tests/helpers/analytic_scenes.py (independent of
the package); expected values are the exact depths along the OUTPUT pixels' centre rays.
"""

from __future__ import annotations

import numpy as np
import pytest
from analytic_scenes import FLOOR, Box, Rect, grazing_wall, render_depth, yaw_pose

from habitat_fih.geometry.surface import resample_depth

HFOV = 90.0


@pytest.mark.parametrize(("fine", "work"), [(256, 64), (128, 32), (96, 32), (64, 64)])
@pytest.mark.parametrize("scene_name", ["floor", "grazing_wall"])
def test_planes_resample_exactly_at_output_centres(scene_name: str, fine: int, work: int) -> None:
    scene = [FLOOR] if scene_name == "floor" else [FLOOR, grazing_wall(10.0, 0.75)]
    pose = yaw_pose(7.0, (0.0, 1.25, 0.0))
    out = resample_depth(render_depth(scene, pose, HFOV, fine, fine), (work, work), 0.05, 0.02)
    truth = render_depth(scene, pose, HFOV, work, work)
    # the crease between floor and wall is not a plane: skip output pixels within one input
    # pixel of it (their depth is one of the two planes, checked below)
    on_plane = truth > 0
    if scene_name == "grazing_wall":
        fine_d = render_depth(scene, pose, HFOV, fine, fine)
        k = fine // work
        only_floor = render_depth([FLOOR], pose, HFOV, fine, fine)
        crease = ~np.isclose(fine_d, only_floor)  # wall pixels
        edge = np.zeros_like(crease)
        edge[1:-1, 1:-1] = crease[1:-1, 1:-1] != (
            crease[:-2, 1:-1] & crease[2:, 1:-1] & crease[1:-1, :-2] & crease[1:-1, 2:]
        )
        near = edge.reshape(work, k, fine // k, k).any(axis=(1, 3)) if k > 1 else edge
        near = near | np.roll(near, 1, 0) | np.roll(near, -1, 0)
        near = near | np.roll(near, 1, 1) | np.roll(near, -1, 1)
        on_plane &= ~near
    assert on_plane.sum() > 0.3 * work * work
    np.testing.assert_allclose(out[on_plane], truth[on_plane], rtol=2e-5)
    # stride sampling (the old way) is off by far more than the covisibility tolerance when the
    # reduction is even (no input pixel centre on the output centre; odd reductions have one)
    if (fine // work) % 2 == 0:
        k = fine // work
        stride = render_depth(scene, pose, HFOV, fine, fine)[k // 2 :: k, k // 2 :: k]
        rel = np.abs(stride[on_plane] / truth[on_plane] - 1)
        assert rel.max() > 0.02


def test_depth_edges_are_never_blended() -> None:
    """A 1 m box in front of a 3 m wall: every output is the box or the wall, and equals the
    closed form except within half an input pixel of the box outline (the box wins there)."""
    fine, work = 128, 32
    wall = Rect((0.0, 0.0, -3.0), (10.0, 0.0, 0.0), (0.0, 10.0, 0.0))
    box = Box((-0.3, -0.2, -1.5), (0.25, 0.35, -1.0))
    pose = yaw_pose(0.0, (0.0, 0.0, 0.0))
    out = resample_depth(
        render_depth([wall, box], pose, HFOV, fine, fine), (work, work), 0.05, 0.02
    )
    truth = render_depth([wall, box], pose, HFOV, work, work)
    assert np.isin(out, np.float32([1.0, 3.0])).all(), np.unique(out)
    wrong = out != truth
    assert wrong.sum() <= 4 * work  # at most the outline
    assert (out[wrong] == 1.0).all()  # the nearer surface wins at the edge


def test_invalid_input_pixels_stay_invalid() -> None:
    depth = np.zeros((64, 64), dtype=np.float32)
    depth[32:] = 2.0  # lower half a fronto-parallel wall, upper half no hit
    out = resample_depth(depth, (16, 16), 0.05, 0.02)
    np.testing.assert_array_equal(out[:8], 0.0)
    np.testing.assert_array_equal(out[8:], 2.0)


def test_compiled_tables_equal_the_array_reference_bit_for_bit() -> None:
    """numpy_tables (compiled loop) == reference_tables (the array code torch also runs)."""
    from habitat_fih.geometry.surface import numpy_tables, reference_tables

    rng = np.random.default_rng(3)
    wall = Rect((0.0, 0.0, -3.0), (10.0, 0.0, 0.0), (0.0, 10.0, 0.0))
    scene = [FLOOR, wall, Box((-0.3, 0.0, -1.5), (0.25, 0.6, -1.0)), grazing_wall(10.0, 0.75)]
    depths = [render_depth(scene, yaw_pose(a, (0.0, 1.25, 0.0)), HFOV, 24, 20) for a in (0, 40)]
    depths.append(rng.uniform(0.3, 6.0, (24, 20)).astype(np.float32))
    depths[-1][rng.random((24, 20)) < 0.2] = 0.0  # scattered invalid pixels
    stack = np.stack(depths)
    got, ref = numpy_tables(stack, 0.05, 0.02), reference_tables(stack, 0.05, 0.02)
    for a, b in ((got.cell, ref.cell), (got.pixel, ref.pixel)):
        assert a.shape == b.shape and a.dtype == b.dtype == np.float32
        np.testing.assert_array_equal(a.view(np.uint32), b.view(np.uint32))
    assert np.isnan(got.cell[0]).any() and (~np.isnan(got.cell[0])).any()  # both kinds of cell


def test_compiled_resampling_equals_the_array_reference_bit_for_bit() -> None:
    from habitat_fih.geometry.surface import reference_resample_depth

    wall = Rect((0.0, 0.0, -3.0), (10.0, 0.0, 0.0), (0.0, 10.0, 0.0))
    scene = [FLOOR, wall, Box((-0.3, 0.0, -1.5), (0.25, 0.6, -1.0)), grazing_wall(10.0, 0.75)]
    for fine, work in ((256, 64), (128, 32), (96, 32), (100, 64)):
        depth = render_depth(scene, yaw_pose(20.0, (0.0, 1.25, 0.0)), HFOV, fine, fine)
        depth[::7, ::5] = 0.0  # invalid pixels among the valid ones
        got = resample_depth(depth, (work, work), 0.05, 0.02)
        ref = reference_resample_depth(depth, (work, work), 0.05, 0.02)
        np.testing.assert_array_equal(got.view(np.uint32), ref.view(np.uint32))
