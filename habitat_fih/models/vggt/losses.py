"""VGGT's training losses (camera, depth, point map), written from the paper's description.

VGGT (Wang et al., CVPR 2025, §3.4) trains with
``L = L_camera + L_depth + L_pmap (+ λ L_track)`` and leaves the camera, depth and point terms
unweighted ("similar ranges"); we have no track head. Targets come from
:mod:`habitat_fih.models.vggt.targets` (normalised by VGGT's scale; predictions are not
normalised). Shapes follow `VGGT.forward`: ``pose_enc`` / each of ``pose_enc_list``
[B, S, 9], ``depth`` [B, S, H, W, 1], ``depth_conf`` [B, S, H, W], ``world_points``
[B, S, H, W, 3], ``world_points_conf`` [B, S, H, W].

Camera (the paper: ``sum_i ||g^_i - g_i||_eps``, the Huber loss of the 9-d encoding). VGGT's
camera head refines its estimate in K rounds (``pose_enc_list``); the paper does not say which
rounds are supervised. We supervise every round with RAFT-style decaying weights (our choice):
``w_k = γ^(K-1-k) / sum_m γ^(K-1-m)`` for round ``k = 0..K-1`` (the last round weighs most;
``γ = 0`` supervises the final estimate only, ``γ = 1`` all rounds equally). With ``h_δ`` the
element-wise Huber function (``x²/2`` for ``|x| <= δ``, else ``δ (|x| - δ/2)``) and the
components ``c``: translation (dims 0-2), rotation quaternion (3-6), FoV (7-8)::

    L_c      = sum_k w_k * mean_{valid frames} sum_{j in c} h_δ(g^k_j - g_j)
    L_camera = λ_T L_translation + λ_R L_rotation + λ_F L_fov

(a mean over frames where the paper sums, so the scale does not depend on B and S).
``camera_norm: l1`` puts ``|x|`` in place of ``h_δ`` (the default of VGGT's released training
code).

Depth and point map (the paper: the aleatoric-uncertainty loss of DUSt3R plus a gradient term,
``sum_i ||Σ_i ⊙ (D^_i - D_i)|| + ||Σ_i ⊙ (∇D^_i - ∇D_i)|| - α log Σ_i``, Σ the predicted
confidence, ⊙ the channel-broadcast product; the point map likewise with its own confidence).
Written per pixel ``p`` with the error ``e_p = pred_p - target_p`` (C channels: 1 for depth, 3
for points), ``||.||`` the Euclidean norm over the channels, ``c_p`` the confidence, ``V`` the
valid pixels and ``V_x`` / ``V_y`` the horizontally / vertically adjacent pairs with both pixels
valid (forward differences, ``∇D^ - ∇D = ∇(D^ - D)``, weighted by the first pixel's
confidence)::

    E = mean_{p in V} c_p ||e_p||
    G = mean_{(p, p+x) in V_x} c_p ||e_{p+x} - e_p|| + mean_{(p, p+y) in V_y} c_p ||e_{p+y} - e_p||
    A = mean_{p in V} log c_p
    L = E + β G - α A            (β = gradient_weight, 0 turns the gradient term off)

Means pool all pixels of the batch. A constant error ``e`` with confidence ``c`` gives
``c |e| - α log c`` per pixel; a constant offset has ``G = 0``. VGGT's confidence is ``1 + exp``
(> 1), so ``log c > 0``. Masked pixels (``valid`` False) contribute nothing (zeroed through
``torch.where`` before any arithmetic, so NaN / inf there cannot leak into values or gradients);
a fully masked batch gives 0, still attached to the graph.

Logged terms (:func:`vggt_loss`), all unweighted: ``vggt/camera`` (with
``vggt/camera_translation``, ``vggt/camera_rotation``, ``vggt/camera_fov``; with
``camera_min_overlap`` also ``vggt/camera_frames``, the fraction of frames supervised),
``vggt/depth``
(with ``vggt/depth_error`` E, ``vggt/depth_gradient`` G, ``vggt/depth_log_conf`` A),
``vggt/point`` (``vggt/point_error``, ``vggt/point_gradient``, ``vggt/point_log_conf``) and
``vggt/total``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor

from habitat_fih.models.vggt.targets import VGGTTargets, reference_overlap

__all__ = [
    "CAMERA_COMPONENTS",
    "CAMERA_NORMS",
    "DenseLossTerms",
    "VGGTLossConfig",
    "camera_loss",
    "camera_loss_components",
    "dense_loss_terms",
    "depth_loss",
    "point_loss",
    "refinement_weights",
    "vggt_loss",
]

#: Element-wise penalties of the camera loss (`VGGTLossConfig.camera_norm`).
CAMERA_NORMS = ("huber", "l1")

#: Pose-encoding components of the camera loss and their slices of the 9-d encoding.
CAMERA_COMPONENTS: dict[str, slice] = {
    "translation": slice(0, 3),
    "rotation": slice(3, 7),
    "fov": slice(7, 9),
}


@dataclass
class VGGTLossConfig:
    """Weights and settings of the VGGT loss (module docstring for the formulas).

    Attributes:
        camera_weight, depth_weight, point_weight: weights of L_camera, L_depth, L_pmap
            (1, 1, 1: the paper leaves them unweighted). 0 skips a head (its outputs may then be
            absent).
        camera_translation_weight, camera_rotation_weight, camera_fov_weight: λ_T, λ_R, λ_F
            inside L_camera (1: the paper's plain Huber of the whole 9-d encoding).
        camera_norm: the element-wise penalty of L_camera: ``"huber"`` (h_δ, the paper's
            wording; default) or ``"l1"`` (|x|, the default of VGGT's released training code).
            With δ = 1 the Huber function is quadratic on every error a quaternion or a
            normalised translation makes, so its gradient shrinks with the error; L1 pulls a
            small error as hard as a large one. On the tiny from-scratch recipe L1 did worse
            (one run, README "Learning without the simulator's cameras"), so Huber stays the
            default.
        huber_delta: δ of the camera Huber loss (> 0; 1.0, our choice - the paper gives none;
            unused with ``camera_norm: l1``).
        refinement_decay: γ of the per-round weights, in [0, 1] (0.6, our choice; 0 = final
            round only).
        alpha: α of the ``-α log Σ`` uncertainty term (>= 0; 0.2, our choice - the paper gives
            none).
        gradient_weight: β of the gradient term (>= 0; 1 as in the paper, 0 turns it off).
        camera_min_overlap: in [0, 1); frames that could have seen less than this fraction of
            the reference frame (`habitat_fih.models.vggt.targets.reference_overlap`: its
            valid pixels' points inside their image) are left out of L_camera (the reference
            always counts). 0 (default, the paper's) supervises every frame. Our option: with
            wide baselines (frames from a whole episode) a frame that shares no view with the
            reference has a pose the images cannot tell; the FIH heatmaps score only the pairs
            that overlap.
    """

    camera_weight: float = 1.0
    depth_weight: float = 1.0
    point_weight: float = 1.0
    camera_translation_weight: float = 1.0
    camera_rotation_weight: float = 1.0
    camera_fov_weight: float = 1.0
    camera_norm: str = "huber"
    huber_delta: float = 1.0
    refinement_decay: float = 0.6
    alpha: float = 0.2
    gradient_weight: float = 1.0
    camera_min_overlap: float = 0.0

    def __post_init__(self) -> None:
        for name in (
            "camera_weight",
            "depth_weight",
            "point_weight",
            "camera_translation_weight",
            "camera_rotation_weight",
            "camera_fov_weight",
            "alpha",
            "gradient_weight",
        ):
            value = getattr(self, name)
            if not isinstance(value, int | float) or not math.isfinite(value) or value < 0:
                raise ValueError(
                    f"VGGTLossConfig.{name} must be a finite number >= 0, got {value!r}"
                )
        if self.camera_norm not in CAMERA_NORMS:
            raise ValueError(
                f"VGGTLossConfig.camera_norm must be one of {CAMERA_NORMS}, "
                f"got {self.camera_norm!r}"
            )
        if not (isinstance(self.huber_delta, int | float) and 0 < self.huber_delta < math.inf):
            raise ValueError(f"VGGTLossConfig.huber_delta must be > 0, got {self.huber_delta!r}")
        decay = self.refinement_decay
        if not (isinstance(decay, int | float) and 0.0 <= decay <= 1.0):
            raise ValueError(f"VGGTLossConfig.refinement_decay must be in [0, 1], got {decay!r}")
        overlap = self.camera_min_overlap
        if not (isinstance(overlap, int | float) and 0.0 <= overlap < 1.0):
            raise ValueError(
                f"VGGTLossConfig.camera_min_overlap must be in [0, 1), got {overlap!r}"
            )

    @property
    def camera_component_weights(self) -> dict[str, float]:
        """λ per camera component (keys of `CAMERA_COMPONENTS`)."""
        return {
            "translation": self.camera_translation_weight,
            "rotation": self.camera_rotation_weight,
            "fov": self.camera_fov_weight,
        }


# --------------------------------------------------------------------------- helpers


def _masked_mean(values: Tensor, mask: Tensor) -> Tensor:
    """Mean of ``values`` over ``mask`` (same shape); 0 attached to the graph if none."""
    zero = torch.zeros((), dtype=values.dtype, device=values.device)
    return torch.where(mask, values, zero).sum() / mask.sum().clamp_min(1).to(values.dtype)


def refinement_weights(num_rounds: int, decay: float) -> list[float]:
    """Normalised round weights ``γ^(K-1-k) / sum_m γ^(K-1-m)`` for ``k = 0..K-1``."""
    if num_rounds < 1:
        raise ValueError(f"need at least one camera estimate, got {num_rounds}")
    raw = [float(decay) ** (num_rounds - 1 - k) for k in range(num_rounds)]  # 0.0 ** 0 == 1
    total = sum(raw)
    return [w / total for w in raw]


# --------------------------------------------------------------------------- camera


def camera_loss_components(
    pred: Tensor | Sequence[Tensor],
    target: Tensor,
    *,
    huber_delta: float = 1.0,
    refinement_decay: float = 0.6,
    frame_valid: Tensor | None = None,
    norm: str = "huber",
) -> dict[str, Tensor]:
    """Round-weighted Huber loss per pose-encoding component (module docstring).

    Args:
        pred: the final estimate [B, S, 9] or the list of per-round estimates
            (``pose_enc_list``, last = final), each [B, S, 9].
        target: [B, S, 9] target encodings (`VGGTTargets.pose_enc`).
        huber_delta: δ of the Huber function.
        norm: ``"huber"`` (h_δ) or ``"l1"`` (|x|), `VGGTLossConfig.camera_norm`.
        refinement_decay: γ of the round weights (`refinement_weights`).
        frame_valid: optional [B, S] bool, frames to supervise (default all).

    Returns:
        ``{"translation", "rotation", "fov"}`` -> scalar tensors.
    """
    estimates = [pred] if isinstance(pred, Tensor) else list(pred)
    weights = refinement_weights(len(estimates), refinement_decay)
    if target.shape[-1] != 9:
        raise ValueError(f"target must be [B, S, 9], got shape {tuple(target.shape)}")
    if norm not in CAMERA_NORMS:
        raise ValueError(f"camera loss norm must be one of {CAMERA_NORMS}, got {norm!r}")
    for k, est in enumerate(estimates):
        if est.shape != target.shape:
            raise ValueError(
                f"camera estimate {k} has shape {tuple(est.shape)}, target {tuple(target.shape)}"
            )
    if frame_valid is None:
        frame_valid = torch.ones(target.shape[:-1], dtype=torch.bool, device=target.device)
    elif frame_valid.shape != target.shape[:-1]:
        raise ValueError(
            f"frame_valid must be {tuple(target.shape[:-1])}, got {tuple(frame_valid.shape)}"
        )
    target = target.to(estimates[-1].dtype)
    out: dict[str, Tensor] = {}
    for name, dims in CAMERA_COMPONENTS.items():
        value = estimates[-1].new_zeros(())
        for weight, est in zip(weights, estimates, strict=True):
            if norm == "l1":
                penalty = (est[..., dims] - target[..., dims]).abs()
            else:
                penalty = F.huber_loss(
                    est[..., dims], target[..., dims], reduction="none", delta=huber_delta
                )
            value = value + weight * _masked_mean(penalty.sum(-1), frame_valid)  # per frame: sum
        out[name] = value
    return out


def camera_loss(
    pred: Tensor | Sequence[Tensor],
    target: Tensor,
    *,
    translation_weight: float = 1.0,
    rotation_weight: float = 1.0,
    fov_weight: float = 1.0,
    huber_delta: float = 1.0,
    refinement_decay: float = 0.6,
    frame_valid: Tensor | None = None,
    norm: str = "huber",
) -> Tensor:
    """``L_camera = λ_T L_translation + λ_R L_rotation + λ_F L_fov`` (scalar); arguments as
    `camera_loss_components`."""
    parts = camera_loss_components(
        pred,
        target,
        huber_delta=huber_delta,
        refinement_decay=refinement_decay,
        frame_valid=frame_valid,
        norm=norm,
    )
    return (
        translation_weight * parts["translation"]
        + rotation_weight * parts["rotation"]
        + fov_weight * parts["fov"]
    )


# --------------------------------------------------------------------------- depth / points


class DenseLossTerms(NamedTuple):
    """The three parts of a dense confidence-weighted loss (scalars; module docstring)."""

    error: Tensor  # E
    gradient: Tensor  # G (0 when not computed)
    log_conf: Tensor  # A

    def total(self, alpha: float, gradient_weight: float) -> Tensor:
        """``E + β G - α A``."""
        return self.error + gradient_weight * self.gradient - alpha * self.log_conf


def dense_loss_terms(
    pred: Tensor, conf: Tensor, target: Tensor, valid: Tensor, *, gradient: bool = True
) -> DenseLossTerms:
    """E, G, A of the module docstring for values with C channels.

    Args:
        pred: [..., H, W, C] predictions.
        conf: [..., H, W] confidences (> 0).
        target: [..., H, W, C] targets.
        valid: [..., H, W] bool, the pixels with a target.
        gradient: compute G (else it is 0).
    """
    if pred.shape != target.shape or pred.dim() < 3:
        raise ValueError(
            f"pred and target must both be [..., H, W, C], got {tuple(pred.shape)} and "
            f"{tuple(target.shape)}"
        )
    if conf.shape != pred.shape[:-1] or valid.shape != pred.shape[:-1]:
        raise ValueError(
            f"conf and valid must be {tuple(pred.shape[:-1])}, got {tuple(conf.shape)} and "
            f"{tuple(valid.shape)}"
        )
    valid = valid.to(device=pred.device, dtype=torch.bool)
    zero = torch.zeros((), dtype=pred.dtype, device=pred.device)
    err = torch.where(valid[..., None], pred - target.to(pred.dtype), zero)  # [..., H, W, C]
    conf = torch.where(valid, conf.to(pred.dtype), torch.ones_like(zero))  # [..., H, W]
    error = _masked_mean(conf * torch.linalg.vector_norm(err, dim=-1), valid)
    log_conf = _masked_mean(conf.log(), valid)
    grad = zero
    if gradient:
        dx = err[..., :, 1:, :] - err[..., :, :-1, :]  # [..., H, W-1, C]
        vx = valid[..., :, 1:] & valid[..., :, :-1]
        dy = err[..., 1:, :, :] - err[..., :-1, :, :]  # [..., H-1, W, C]
        vy = valid[..., 1:, :] & valid[..., :-1, :]
        grad = _masked_mean(conf[..., :, :-1] * torch.linalg.vector_norm(dx, dim=-1), vx)
        grad = grad + _masked_mean(conf[..., :-1, :] * torch.linalg.vector_norm(dy, dim=-1), vy)
    return DenseLossTerms(error=error, gradient=grad, log_conf=log_conf)


def _depth_channels(depth: Tensor, conf: Tensor, name: str) -> Tensor:
    """Depth shaped like ``conf`` [..., H, W] -> [..., H, W, 1]; [..., H, W, 1] as is."""
    if depth.shape == conf.shape:
        return depth[..., None]
    if depth.shape == (*conf.shape, 1):
        return depth
    raise ValueError(
        f"{name} must be {tuple(conf.shape)} or {(*conf.shape, 1)} (the confidence's shape), "
        f"got {tuple(depth.shape)}"
    )


def depth_loss(
    pred: Tensor,
    conf: Tensor,
    target: Tensor,
    valid: Tensor,
    alpha: float = 0.2,
    gradient_weight: float = 1.0,
) -> Tensor:
    """L_depth (scalar): pred [B, S, H, W, 1] (or [B, S, H, W]), conf [B, S, H, W], target
    [B, S, H, W] (or with the trailing 1), valid [B, S, H, W] bool."""
    terms = dense_loss_terms(
        _depth_channels(pred, conf, "pred"),
        conf,
        _depth_channels(target, conf, "target"),
        valid,
        gradient=gradient_weight > 0,
    )
    return terms.total(alpha, gradient_weight)


def point_loss(
    pred: Tensor,
    conf: Tensor,
    target: Tensor,
    valid: Tensor,
    alpha: float = 0.2,
    gradient_weight: float = 1.0,
) -> Tensor:
    """L_pmap (scalar): pred / target [B, S, H, W, 3], conf [B, S, H, W], valid [B, S, H, W]."""
    if pred.shape[-1] != 3:
        raise ValueError(f"point maps must be [..., H, W, 3], got {tuple(pred.shape)}")
    terms = dense_loss_terms(pred, conf, target, valid, gradient=gradient_weight > 0)
    return terms.total(alpha, gradient_weight)


# --------------------------------------------------------------------------- total


def _output(outputs: Mapping[str, Any], key: str, term: str) -> Any:
    if key not in outputs:
        raise KeyError(
            f"VGGT output {key!r} is needed for the {term} loss (its weight is > 0); run that head "
            f"or set the weight to 0"
        )
    return outputs[key]


def vggt_loss(
    outputs: Mapping[str, Any],
    targets: VGGTTargets,
    config: VGGTLossConfig | None = None,
) -> tuple[Tensor, dict[str, Tensor]]:
    """Weighted VGGT loss and every term for logging.

    Args:
        outputs: `VGGT.forward`'s dict; uses ``pose_enc_list`` (or ``pose_enc``), ``depth`` /
            ``depth_conf``, ``world_points`` / ``world_points_conf`` of the heads whose weight
            is > 0 (a head with weight 0 is skipped, its outputs may be absent).
        targets: batched `VGGTTargets` ([B, S, ...], `stack_targets`) on the outputs' device.
        config: `VGGTLossConfig` (defaults: the paper's unweighted sum).

    Returns:
        ``(total, terms)``: ``total`` a scalar with grad = ``w_cam L_camera + w_depth L_depth +
        w_point L_point``; ``terms`` the detached, unweighted terms named as logged (module
        docstring) plus ``vggt/total``.

    Raises:
        KeyError: an output needed by a term with weight > 0 is missing.
        ValueError: shapes that do not match.
    """
    config = config or VGGTLossConfig()
    weighted: list[tuple[float, Tensor]] = []
    terms: dict[str, Tensor] = {}
    if config.camera_weight > 0:
        if "pose_enc_list" in outputs:
            estimates = outputs["pose_enc_list"]
        else:
            estimates = _output(outputs, "pose_enc", "camera")
        frame_valid = None
        if config.camera_min_overlap > 0:
            frame_valid = reference_overlap(targets) >= config.camera_min_overlap
            frame_valid[..., 0] = True
            terms["vggt/camera_frames"] = frame_valid.float().mean()
        parts = camera_loss_components(
            estimates,
            targets.pose_enc,
            huber_delta=config.huber_delta,
            refinement_decay=config.refinement_decay,
            frame_valid=frame_valid,
            norm=config.camera_norm,
        )
        lam = config.camera_component_weights
        camera = sum(lam[name] * value for name, value in parts.items())
        weighted.append((config.camera_weight, camera))
        terms["vggt/camera"] = camera
        terms.update({f"vggt/camera_{name}": value for name, value in parts.items()})
    heads = (
        ("depth", config.depth_weight, "depth", "depth_conf", targets.depth),
        ("point", config.point_weight, "world_points", "world_points_conf", targets.world_points),
    )
    for term, weight, key, conf_key, target in heads:
        if weight == 0:
            continue
        pred = _output(outputs, key, term)
        conf = _output(outputs, conf_key, term)
        if term == "depth":
            pred = _depth_channels(pred, conf, "depth")
            target = _depth_channels(target, conf, "target depth")
        dense = dense_loss_terms(
            pred,
            conf,
            target,
            targets.valid,
            gradient=config.gradient_weight > 0,
        )
        value = dense.total(config.alpha, config.gradient_weight)
        weighted.append((weight, value))
        terms[f"vggt/{term}"] = value
        terms[f"vggt/{term}_error"] = dense.error
        terms[f"vggt/{term}_gradient"] = dense.gradient
        terms[f"vggt/{term}_log_conf"] = dense.log_conf
    if not weighted:
        raise ValueError("VGGTLossConfig has every head weight at 0: nothing to train")
    total = sum(w * v for w, v in weighted)
    logged = {name: value.detach() for name, value in terms.items()}
    logged["vggt/total"] = total.detach()
    return total, logged
