"""Geometry metrics of VGGT's predictions: relative pose errors, AUC@30, depth AbsRel / δ.

Cameras are pose encodings [B, S, 9] (``absT_quaR_FoV``, OpenCV camera-from-world
``[R | t]``, decoded with :func:`~habitat_fih.models.vggt.pose_encoding.quat_to_mat`); ``^``
marks the prediction. Everything is computed in float64 and returned as Python floats.

Relative poses, over all ``S (S - 1) / 2`` frame pairs ``i < j`` of each sequence (camera ``i``
to camera ``j``)::

    R_ij = R_j R_i^T        t_ij = t_j - R_ij t_i        (||t_ij|| = distance of the centres)

* ``rre_deg`` - relative rotation error, the angle of ``R^_ij^T R_ij``:
  ``arccos(clamp((trace - 1) / 2, -1, 1))`` in degrees; the mean over pairs.
* ``rte_deg`` - relative translation error as an angle (VGGT / PoseDiffusion "RTE"): the angle
  between ``t^_ij`` and ``t_ij``, ``arccos(t^.t / max(|t^| |t|, 1e-12))`` in degrees (90 for
  a zero predicted translation). By default the sign of the direction is not scored,
  ``min(θ, 180 - θ)``, as in the PoseDiffusion / VGGT evaluation protocol;
  ``fold_translation_sign=False`` scores it. A pair whose ground-truth baseline
  ``|t_ij|`` is below ``min_baseline`` (GT units; a camera turning in place - habitat's turn
  actions) has no direction: its RTE is undefined, left out of the mean (NaN if all are).
* ``rre_ref_deg`` - ``rre_deg`` over the pairs ``(0, j)`` alone: each frame against VGGT's
  reference (first) frame. With ``vggt_reference: current`` these are the keyframe-to-
  current-view poses the heatmaps' frustum prior reads.
* ``rte_m`` - translation error in metres after aligning the prediction's scale: per sequence
  ``σ = sum_ij t^_ij . t_ij / sum_ij |t^_ij|²`` (least squares over the pairs; 0 when every
  ``t^_ij`` is 0), then ``scale * |σ t^_ij - t_ij|`` with ``scale`` the targets' metres per GT
  unit (`VGGTTargets.scale`); the mean over pairs (all pairs, turns in place included).
* ``rte_m_as_trained`` - the same without the alignment (``σ = 1``): VGGT is trained to output the
  targets' normalised frame, so ``scale * t^`` is its metric prediction.
* ``auc_30`` - VGGT's AUC@30 (from PoseDiffusion): the area under the accuracy curve of the
  per-pair error ``max(RRE, RTE)`` (the accuracy at τ is the fraction of pairs with both
  errors below τ, i.e. the minimum of RRA@τ and RTA@τ per pair), over integer thresholds
  ``τ = 1..T`` degrees: ``AUC@T = (1/T) sum_{τ=1..T} mean_ij [max(RRE_ij, RTE_ij) < τ]``; a
  pair with undefined RTE counts with its RRE alone. Identical poses give 1.
* ``fov_err_deg`` - ``mean |FoV^ - FoV|`` in degrees over every frame and both FoVs (dims 7-8
  of the encoding): the intrinsics a frustum from the predicted cameras uses.

Depth (``depth_metrics``), over the valid pixels of all frames pooled, ``d`` the target,
``d^`` the prediction:

* ``abs_rel = mean |d^ - d| / d`` and ``delta_1.25 = mean [max(d^/d, d/d^) < 1.25]``.
* ``alignment="none"`` compares the prediction with the target as is: with VGGT's normalised
  targets that is the model's own (as trained) scale, and both ratios are unit-free, so the
  numbers equal metric ones (``scale * d^`` against metric depth).
* ``alignment="median"`` first scales the prediction per sequence (over its S frames) by
  ``median(d) / median(d^)`` of the valid pixels (the usual video-depth protocol; scale-free).

`geometry_metrics` reports both: ``depth_abs_rel`` / ``depth_delta_1.25`` (none) and
``depth_abs_rel_median`` / ``depth_delta_1.25_median``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any, Literal, NamedTuple

import torch
from torch import Tensor

from habitat_fih.models.vggt.pose_encoding import quat_to_mat
from habitat_fih.models.vggt.targets import VGGTTargets

__all__ = [
    "RelativePoseErrors",
    "depth_metrics",
    "geometry_metrics",
    "pose_auc",
    "pose_metrics",
    "reference_pairs",
    "relative_pose_errors",
]


class RelativePoseErrors(NamedTuple):
    """Per-pair errors of `relative_pose_errors` (P = S (S - 1) / 2 pairs per sequence)."""

    rre_deg: Tensor  # [B, P]
    rte_deg: Tensor  # [B, P], NaN where the ground-truth baseline is below min_baseline
    pred_t: Tensor  # [B, P, 3] predicted relative translations t^_ij
    gt_t: Tensor  # [B, P, 3] ground-truth relative translations t_ij


def reference_pairs(frames: int, device: torch.device | str | None = None) -> Tensor:
    """[P] bool: the pairs of `relative_pose_errors` (``i < j`` in ``triu_indices`` order) that
    are ``(0, j)``, frame ``j`` against the reference, in ``j = 1 .. S-1`` order."""
    first, _ = torch.triu_indices(frames, frames, offset=1, device=device)
    return first == 0


def _batched(pose_enc: Tensor, name: str) -> Tensor:
    """[S, 9] -> [1, S, 9]; [B, S, 9] as is; float64."""
    if pose_enc.dim() == 2:
        pose_enc = pose_enc[None]
    if pose_enc.dim() != 3 or pose_enc.shape[-1] != 9:
        raise ValueError(f"{name} must be [S, 9] or [B, S, 9], got {tuple(pose_enc.shape)}")
    return pose_enc.detach().to(torch.float64)


def _angle_deg(cos: Tensor) -> Tensor:
    return torch.rad2deg(torch.arccos(cos.clamp(-1.0, 1.0)))


def relative_pose_errors(
    pred_pose_enc: Tensor,
    gt_pose_enc: Tensor,
    *,
    fold_translation_sign: bool = True,
    min_baseline: float = 1e-4,
) -> RelativePoseErrors:
    """RRE and RTE (degrees) of every frame pair ``i < j`` (module docstring).

    Args:
        pred_pose_enc, gt_pose_enc: [B, S, 9] (or [S, 9]) pose encodings.
        fold_translation_sign: score the direction up to sign, ``min(θ, 180 - θ)``.
        min_baseline: ground-truth ``|t_ij|`` (GT units) below which RTE is undefined (NaN).
    """
    pred, gt = _batched(pred_pose_enc, "pred_pose_enc"), _batched(gt_pose_enc, "gt_pose_enc")
    if pred.shape != gt.shape:
        raise ValueError(
            f"pose encodings differ in shape: {tuple(pred.shape)} vs {tuple(gt.shape)}"
        )
    i, j = torch.triu_indices(pred.shape[1], pred.shape[1], offset=1, device=pred.device)

    def relative(enc: Tensor) -> tuple[Tensor, Tensor]:
        rot, t = quat_to_mat(enc[..., 3:7]), enc[..., :3]  # [B, S, 3, 3], [B, S, 3]
        rot_ij = rot[:, j] @ rot[:, i].transpose(-1, -2)  # [B, P, 3, 3]
        t_ij = t[:, j] - (rot_ij @ t[:, i, :, None])[..., 0]  # [B, P, 3]
        return rot_ij, t_ij

    rot_p, t_p = relative(pred)
    rot_g, t_g = relative(gt)
    trace = torch.einsum("bpij,bpij->bp", rot_p, rot_g)  # trace(R^^T R)
    rre = _angle_deg((trace - 1.0) / 2.0)
    norms = t_p.norm(dim=-1) * t_g.norm(dim=-1)
    rte = _angle_deg((t_p * t_g).sum(-1) / norms.clamp_min(1e-12))
    if fold_translation_sign:
        rte = torch.minimum(rte, 180.0 - rte)
    rte = torch.where(t_g.norm(dim=-1) < min_baseline, torch.full_like(rte, math.nan), rte)
    return RelativePoseErrors(rre_deg=rre, rte_deg=rte, pred_t=t_p, gt_t=t_g)


def pose_auc(rre_deg: Tensor, rte_deg: Tensor, max_threshold: int = 30) -> float:
    """``AUC@T = (1/T) sum_{τ=1..T} mean [max(RRE, RTE) < τ]`` over all pairs (RTE NaN: RRE
    alone); NaN when there is no pair."""
    if max_threshold < 1:
        raise ValueError(f"max_threshold must be >= 1, got {max_threshold}")
    err = torch.fmax(rre_deg.flatten(), rte_deg.flatten())  # fmax ignores a NaN side
    if err.numel() == 0:
        return math.nan
    thresholds = torch.arange(1, max_threshold + 1, dtype=err.dtype, device=err.device)  # [T]
    accuracy = (err[None, :] < thresholds[:, None]).to(err.dtype).mean(-1)  # [T]
    return float(accuracy.mean())


def _nanmean(x: Tensor) -> float:
    return float(x.nanmean()) if x.numel() else math.nan


def pose_metrics(
    pred_pose_enc: Tensor,
    gt_pose_enc: Tensor,
    scale: Tensor | float = 1.0,
    *,
    max_threshold: int = 30,
    fold_translation_sign: bool = True,
    min_baseline: float = 1e-4,
) -> dict[str, float]:
    """``rre_deg``, ``rre_ref_deg``, ``rte_deg``, ``rte_m``, ``rte_m_as_trained``, ``auc_<T>``,
    ``fov_err_deg`` (module docstring).

    Args:
        pred_pose_enc, gt_pose_enc: [B, S, 9] (or [S, 9]).
        scale: metres per ground-truth unit, a number or [B] (`VGGTTargets.scale`).
        max_threshold: T of the AUC.
        fold_translation_sign, min_baseline: as `relative_pose_errors`.
    """
    errors = relative_pose_errors(
        pred_pose_enc,
        gt_pose_enc,
        fold_translation_sign=fold_translation_sign,
        min_baseline=min_baseline,
    )
    t_p, t_g = errors.pred_t, errors.gt_t  # [B, P, 3]
    scale_t = torch.as_tensor(scale, dtype=torch.float64, device=t_p.device).detach()
    scale_t = scale_t.reshape(-1, 1).expand(t_p.shape[0], 1)  # [B, 1]
    sigma = (t_p * t_g).sum((-1, -2)) / (t_p * t_p).sum((-1, -2)).clamp_min(1e-300)  # [B]
    aligned = scale_t * (sigma[:, None, None] * t_p - t_g).norm(dim=-1)  # [B, P] metres
    as_trained = scale_t * (t_p - t_g).norm(dim=-1)
    to_reference = reference_pairs(pred_pose_enc.shape[-2], t_p.device)
    return {
        "rre_deg": _nanmean(errors.rre_deg),
        "rre_ref_deg": _nanmean(errors.rre_deg[:, to_reference]),
        "rte_deg": _nanmean(errors.rte_deg),
        "rte_m": _nanmean(aligned),
        "rte_m_as_trained": _nanmean(as_trained),
        f"auc_{max_threshold}": pose_auc(errors.rre_deg, errors.rte_deg, max_threshold),
        "fov_err_deg": float(
            torch.rad2deg(
                (pred_pose_enc[..., 7:].double() - gt_pose_enc[..., 7:].double()).abs()
            ).mean()
        ),
    }


def depth_metrics(
    pred: Tensor,
    target: Tensor,
    valid: Tensor,
    alignment: Literal["none", "median"] = "none",
) -> dict[str, float]:
    """``abs_rel`` and ``delta_1.25`` of depth (module docstring).

    Args:
        pred: [B, S, H, W] or [B, S, H, W, 1] predicted depth (or [S, H, W] for one sequence).
        target: [B, S, H, W] target depth, same layout as ``pred`` without the trailing 1.
        valid: [B, S, H, W] bool; pixels with a target > 0.
        alignment: ``"none"`` or ``"median"`` (per-sequence median scaling).

    Returns:
        ``{"abs_rel", "delta_1.25"}``; NaN when no pixel is valid.
    """
    if pred.dim() == target.dim() + 1 and pred.shape[-1] == 1:
        pred = pred[..., 0]
    if pred.shape != target.shape or valid.shape != target.shape or target.dim() not in (3, 4):
        raise ValueError(
            f"pred, target and valid must be [B, S, H, W] (or [S, H, W]), got {tuple(pred.shape)}, "
            f"{tuple(target.shape)}, {tuple(valid.shape)}"
        )
    if alignment not in ("none", "median"):
        raise ValueError(f"alignment must be 'none' or 'median', got {alignment!r}")
    if target.dim() == 3:
        pred, target, valid = pred[None], target[None], valid[None]
    pred, target = pred.detach().to(torch.float64), target.detach().to(torch.float64)
    valid = valid.to(torch.bool) & (target > 0)
    if not valid.any():
        return {"abs_rel": math.nan, "delta_1.25": math.nan}
    if alignment == "median":
        factors = []
        for b in range(pred.shape[0]):
            m = valid[b]
            factors.append(
                target[b][m].median() / pred[b][m].median().clamp_min(1e-12)
                if m.any()
                else target.new_ones(())
            )
        pred = pred * torch.stack(factors).reshape(-1, 1, 1, 1)
    d_hat, d = pred[valid], target[valid]
    abs_rel = ((d_hat - d).abs() / d).mean()
    ratio = torch.maximum(d_hat / d, d / d_hat.clamp_min(1e-12))
    delta = (ratio < 1.25).to(torch.float64).mean()
    return {"abs_rel": float(abs_rel), "delta_1.25": float(delta)}


def geometry_metrics(
    outputs: Mapping[str, Any], targets: VGGTTargets, *, max_threshold: int = 30
) -> dict[str, float]:
    """Pose metrics (when ``pose_enc`` is in ``outputs``) and depth metrics, both alignments
    (when ``depth`` is), of one VGGT forward against batched `VGGTTargets` (keys: module
    docstring; depth keys prefixed ``depth_``, the median ones suffixed ``_median``)."""
    out: dict[str, float] = {}
    if "pose_enc" in outputs:
        out.update(
            pose_metrics(
                outputs["pose_enc"], targets.pose_enc, targets.scale, max_threshold=max_threshold
            )
        )
    if "depth" in outputs:
        for alignment, suffix in (("none", ""), ("median", "_median")):
            values = depth_metrics(outputs["depth"], targets.depth, targets.valid, alignment)
            out.update({f"depth_{name}{suffix}": value for name, value in values.items()})
    return out
