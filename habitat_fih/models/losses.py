"""Training losses for frame-indexed heatmaps and actions, per training stage.

Map losses take ``logits [B, K, h, w]`` (one map per keyframe slot) and a ``valid [B, K]`` bool
mask (False for padding slots and for targets that are unusable). Masked maps contribute
nothing (their logits are replaced by zeros through ``torch.where`` before any arithmetic, so
NaN / inf in padding cannot leak into values or gradients); a fully masked batch gives a zero
that is still attached to the graph. Each loss returns a scalar.

A keyframe whose target is invalid (the sensor's ``covisibility_valid``: it shares no more than
``min_overlap`` of the current view) is masked in EVERY map term, the ones that need no target
included, so its map gets no training signal and adjacent-pair terms skip it. This is a choice:
the heatmap metrics score only valid pairs too, so loss and metric agree; the cost is that the
model is not taught to output an empty map for a keyframe it cannot see.

Map activations (the document leaves them open; chosen per term and documented there):

* heatmap MSE, distinctness, smoothness: ``sigmoid`` — per-pixel probabilities in ``[0, 1]``,
  the same space as the co-visibility targets;
* Gaussian heatmap CE, temporal consistency, spatial reasoning (entropy): ``softmax`` over the
  flattened map — a distribution over pixels.

Stages (:func:`compute_stage_loss`):

``pretrain``  ``w_h * gaussian_heatmap_ce + w_s * smoothness + w_a * feature_alignment``
``finetune``  ``1.0 * heatmap_mse + 0.3 * distinctness + 0.6 * temporal + 0.4 *
              spatial_reasoning`` (the document's weights) ``[+ w_act * action]``
``main``      ``w_h * heatmap_mse + w_sc * spatial_consistency (adjacent frames) + w_tc *
              temporal_coherence + w_act * action [+ w_d * heatmap_distribution]`` (the
              last is ours, off by default: see `MainLossConfig`)

The document gives no numbers for the pretraining and main-trainer weights; the defaults here
(pretrain 1.0 / 0.1 / 0.5, main 1.0 / 0.3 / 0.6 / 1.0) are our choice.

Logged term (``loss/<term>`` in TensorBoard) -> function -> weight (``<stage>_weight`` in the
stage's config):

========================  ===================================  ==============================
``heatmap_ce``            :func:`gaussian_heatmap_ce_loss`     pretrain ``heatmap``
``smoothness``            :func:`smoothness_loss`              pretrain ``smoothness``
``alignment``             :func:`feature_alignment_loss`       pretrain ``alignment``
``heatmap_mse``           :func:`frame_indexed_mse_loss`       finetune / main ``heatmap``
``distinctness``          :func:`distinctness_loss`            finetune ``distinctness``
``temporal``              :func:`temporal_consistency_loss`    finetune ``temporal``
``spatial_reasoning``     :func:`spatial_reasoning_loss`       finetune ``spatial_reasoning``
                          (the map-entropy term)
``spatial_consistency``   :func:`spatial_consistency_loss`     main ``spatial_consistency``
``temporal_coherence``    :func:`temporal_consistency_loss`    main ``temporal_coherence``
``heatmap_distribution``  :func:`sigmoid_distribution_ce_loss` main ``heatmap_distribution``
``action``                :func:`action_loss`                  finetune / main ``action``
========================  ===================================  ==============================

The action term's per-step VLN-CE inflection weights follow one rule: :func:`inflection_weight`
(one step, as the trainer's collection weights each sample) and :func:`inflection_weights`
(whole sequences).

Target kinds (`HEATMAP_KINDS`): a model may predict several maps per keyframe, one per kind
(``covisibility``, and ``camera_position``: a Gaussian at the keyframe camera's projection on
the current view, valid only where that camera is IN_VIEW). Every map term of a stage (all but
``action`` and ``alignment``) is computed per kind present in ``preds`` (keys
``heatmap_logits`` for covisibility, ``heatmap_logits_<kind>`` for the others; targets
``heatmaps`` / ``valid`` and ``heatmaps_<kind>`` / ``valid_<kind>``) and the kind's terms are
weighted by the stage's ``<kind>_weight`` (covisibility 1) on top of the term's own weight;
their logged names carry the ``_<kind>`` suffix (e.g. ``heatmap_mse_camera_position``). With
covisibility alone the loss is exactly the single-kind one.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = [
    "HEATMAP_KINDS",
    "STAGES",
    "FinetuneLossConfig",
    "LossConfig",
    "MainLossConfig",
    "PretrainLossConfig",
    "action_loss",
    "compute_stage_loss",
    "distinctness_loss",
    "feature_alignment_loss",
    "frame_indexed_mse_loss",
    "gaussian_heatmap_ce_loss",
    "inflection_weight",
    "inflection_weights",
    "kind_suffix",
    "sigmoid_distribution_ce_loss",
    "smoothness_loss",
    "spatial_consistency_loss",
    "spatial_reasoning_loss",
    "temporal_consistency_loss",
]

STAGES: tuple[str, ...] = ("pretrain", "finetune", "main")
#: Heatmap target kinds, in the order their terms are computed (the ``frame_heatmaps``
#: sensor's `TARGET_KINDS`).
HEATMAP_KINDS: tuple[str, ...] = ("covisibility", "camera_position")


def kind_suffix(kind: str) -> str:
    """Key / term-name suffix of a target kind: ``""`` for covisibility, else ``"_<kind>"``."""
    if kind not in HEATMAP_KINDS:
        raise ValueError(f"heatmap target kind must be one of {HEATMAP_KINDS}, got {kind!r}")
    return "" if kind == "covisibility" else f"_{kind}"


_ACTIVATIONS = ("sigmoid", "softmax", "none")


# --------------------------------------------------------------------------- configs


def _check_nonneg(owner: object, names: tuple[str, ...]) -> None:
    for name in names:
        value = getattr(owner, name)
        if not isinstance(value, int | float) or not math.isfinite(value) or value < 0:
            raise ValueError(
                f"{type(owner).__name__}.{name} must be a finite number >= 0, got {value!r}"
            )


@dataclass
class PretrainLossConfig:
    """Pretraining weights (``loss_functions.pretrain_losses.*.weight``) and settings.

    Attributes:
        heatmap_weight: Gaussian heatmap cross-entropy.
        smoothness_weight: spatial smoothness of the predicted (sigmoid) maps.
        alignment_weight: cross-frame feature alignment (InfoNCE) on the fused tokens of
            covisible (keyframe cell, current-view cell) pairs (`habitat_fih.models.alignment`;
            the pairs come from simulator geometry, `habitat_fih.trainers.correspondences`).
            On by default, as the design's pretraining.
        alignment_temperature: InfoNCE temperature (> 0).
        alignment_pairs: N, the pairs the collector draws per (past frame, current view); the
            InfoNCE of one such pair of frames scores its N pairs against each other.
        camera_position_weight: weight of the camera-position maps' terms (each term's own
            weight times this; used only when the model predicts them).
    """

    heatmap_weight: float = 1.0
    smoothness_weight: float = 0.1
    alignment_weight: float = 0.5
    alignment_temperature: float = 0.07
    alignment_pairs: int = 32
    camera_position_weight: float = 1.0

    def __post_init__(self) -> None:
        _check_nonneg(
            self,
            ("heatmap_weight", "smoothness_weight", "alignment_weight", "camera_position_weight"),
        )
        pairs = self.alignment_pairs
        if isinstance(pairs, bool) or not isinstance(pairs, int) or pairs < 1:
            raise ValueError(
                f"PretrainLossConfig.alignment_pairs must be an integer >= 1, got {pairs!r}"
            )
        if not self.alignment_temperature > 0:
            raise ValueError(
                "PretrainLossConfig.alignment_temperature must be > 0, "
                f"got {self.alignment_temperature}"
            )


@dataclass
class FinetuneLossConfig:
    """Fine-tuning weights (document: total = 1.0 a + 0.3 b + 0.6 c + 0.4 d) and settings.

    Attributes:
        heatmap_weight: a, frame-indexed MSE.
        distinctness_weight: b.
        temporal_weight: c.
        spatial_reasoning_weight: d.
        temporal_target_norm: c's target L2 norm of consecutive-map differences (0.5).
        entropy_target: d's absolute entropy target in nats; ``None`` (default) uses
            ``entropy_target_fraction * ln(h * w)``. The document's value is 6.0 — set
            ``entropy_target=6.0`` to reproduce it (unreachable for maps with ``h*w < 404``).
        entropy_target_fraction: d's size-relative target (0.72 ≈ 6.0 / ln(64 * 64)).
        action_weight: weight of the inflection-weighted action CE (0 = the document's total).
        inflection_coef: VLN-CE inflection weight (3.2).
        camera_position_weight: weight of the camera-position maps' terms (each term's own
            weight times this; used only when the model predicts them).
    """

    heatmap_weight: float = 1.0
    distinctness_weight: float = 0.3
    temporal_weight: float = 0.6
    spatial_reasoning_weight: float = 0.4
    temporal_target_norm: float = 0.5
    entropy_target: float | None = None
    entropy_target_fraction: float = 0.72
    action_weight: float = 0.0
    inflection_coef: float = 3.2
    camera_position_weight: float = 1.0

    def __post_init__(self) -> None:
        _check_nonneg(
            self,
            (
                "camera_position_weight",
                "heatmap_weight",
                "distinctness_weight",
                "temporal_weight",
                "spatial_reasoning_weight",
                "temporal_target_norm",
                "action_weight",
            ),
        )
        if self.entropy_target is not None:
            _check_nonneg(self, ("entropy_target",))
        if not 0.0 < self.entropy_target_fraction <= 1.0:
            raise ValueError(
                "FinetuneLossConfig.entropy_target_fraction must be in (0, 1], "
                f"got {self.entropy_target_fraction}"
            )
        if not self.inflection_coef >= 1.0:
            raise ValueError(
                f"FinetuneLossConfig.inflection_coef must be >= 1, got {self.inflection_coef}"
            )


@dataclass
class MainLossConfig:
    """Main (end-to-end) trainer weights and settings.

    Attributes:
        heatmap_weight: frame-indexed MSE (as fine-tuning's a).
        spatial_consistency_weight: :func:`spatial_consistency_loss` — adjacent keyframes'
            per-pixel map change must follow the targets' change.
        temporal_coherence_weight: :func:`temporal_consistency_loss` (fine-tuning's c).
        temporal_target_norm: its target norm (0.5).
        action_weight: inflection-weighted action CE.
        inflection_coef: VLN-CE inflection weight (3.2).
        heatmap_distribution_weight: :func:`sigmoid_distribution_ce_loss` — where on the
            current view the target's mass lies (the ``frame_heatmap_quality`` KL plus the
            target's entropy); not in the document's main loss, so 0 by default. MSE alone
            mostly learns *how much* of the view is covisible, which the KL (normalised maps)
            ignores.
        camera_position_weight: weight of the camera-position maps' terms (each term's own
            weight times this; used only when the model predicts them).
    """

    heatmap_weight: float = 1.0
    spatial_consistency_weight: float = 0.3
    temporal_coherence_weight: float = 0.6
    temporal_target_norm: float = 0.5
    action_weight: float = 1.0
    inflection_coef: float = 3.2
    heatmap_distribution_weight: float = 0.0
    camera_position_weight: float = 1.0

    def __post_init__(self) -> None:
        _check_nonneg(
            self,
            (
                "camera_position_weight",
                "heatmap_weight",
                "heatmap_distribution_weight",
                "spatial_consistency_weight",
                "temporal_coherence_weight",
                "temporal_target_norm",
                "action_weight",
            ),
        )
        if not self.inflection_coef >= 1.0:
            raise ValueError(
                f"MainLossConfig.inflection_coef must be >= 1, got {self.inflection_coef}"
            )


@dataclass
class LossConfig:
    """All stages' loss settings."""

    pretrain: PretrainLossConfig = field(default_factory=PretrainLossConfig)
    finetune: FinetuneLossConfig = field(default_factory=FinetuneLossConfig)
    main: MainLossConfig = field(default_factory=MainLossConfig)


# --------------------------------------------------------------------------- helpers


def _check_maps(logits: Tensor, name: str = "logits") -> None:
    if logits.dim() != 4:
        raise ValueError(f"{name} must be [B, K, h, w], got shape {tuple(logits.shape)}")


def _resolve_valid(logits: Tensor, valid: Tensor | None) -> Tensor:
    b, k = logits.shape[:2]
    if valid is None:
        return torch.ones(b, k, dtype=torch.bool, device=logits.device)
    if tuple(valid.shape) != (b, k):
        raise ValueError(f"valid must be [B={b}, K={k}], got shape {tuple(valid.shape)}")
    return valid.to(device=logits.device, dtype=torch.bool)


def _sigmoid_maps_and_targets(
    logits: Tensor, targets: Tensor, valid: Tensor | None
) -> tuple[Tensor, Tensor, Tensor]:
    """Checked, masked (sigmoid maps [B,K,h,w], targets [B,K,h,w], valid [B,K])."""
    _check_maps(logits)
    _check_target(logits, targets)
    valid = _resolve_valid(logits, valid)
    p = torch.sigmoid(_sanitize(logits, valid))
    return p, _sanitize(targets.to(p.dtype), valid), valid


def _sanitize(x: Tensor, mask: Tensor) -> Tensor:
    """Zero the masked entries of ``x`` (``mask`` broadcast from the left) without NaN grads."""
    m = mask.reshape(mask.shape + (1,) * (x.dim() - mask.dim()))
    return torch.where(m, x, torch.zeros((), dtype=x.dtype, device=x.device))


def _masked_mean(values: Tensor, mask: Tensor) -> Tensor:
    """Mean of ``values`` over ``mask``; 0 (attached to the graph) when nothing is unmasked."""
    values = _sanitize(values, mask)
    return values.sum() / mask.sum().clamp_min(1).to(values.dtype)


def _activate(logits: Tensor, activation: str) -> Tensor:
    if activation == "sigmoid":
        return torch.sigmoid(logits)
    if activation == "softmax":
        return logits.flatten(-2).softmax(-1).view_as(logits)
    if activation == "none":
        return logits
    raise ValueError(f"activation must be one of {_ACTIVATIONS}, got {activation!r}")


def _check_target(logits: Tensor, targets: Tensor) -> None:
    if targets.shape != logits.shape:
        raise ValueError(
            f"targets must match logits {tuple(logits.shape)}, got {tuple(targets.shape)}"
        )


# --------------------------------------------------------------------------- pretraining


def gaussian_heatmap_ce_loss(
    logits: Tensor, targets: Tensor, valid: Tensor | None = None
) -> Tensor:
    """Cross-entropy between the target distribution and the predicted softmax over pixels.

    ``q = target / sum(target)`` (a proper distribution; the document instead took
    ``softmax(target)`` of an already-normalised map, which flattens any map towards uniform —
    ``exp`` of values in ``[0, 1]`` varies by at most ``e``), and
    ``loss = -sum_pixels q * log_softmax(logits)``, averaged over valid maps. Its minimum is
    the entropy of ``q``, not 0. Maps whose target sums to 0 are masked out.

    Args:
        logits: ``[B, K, h, w]``.
        targets: ``[B, K, h, w]`` non-negative maps (e.g. Gaussians).
        valid: ``[B, K]`` bool.
    """
    _check_maps(logits)
    _check_target(logits, targets)
    valid = _resolve_valid(logits, valid)
    tgt = _sanitize(targets.to(logits.dtype), valid).flatten(2)  # [B, K, h*w]
    if bool((tgt < 0).any()):
        raise ValueError("gaussian_heatmap_ce_loss targets must be non-negative")
    mass = tgt.sum(-1)  # [B, K]
    valid = valid & (mass > 0)
    q = tgt / mass.clamp_min(torch.finfo(tgt.dtype).tiny)[..., None]
    log_p = _sanitize(logits, valid).flatten(2).log_softmax(-1)  # [B, K, h*w]
    ce = -(q * log_p).sum(-1)  # [B, K]
    return _masked_mean(ce, valid)


def sigmoid_distribution_ce_loss(
    logits: Tensor, targets: Tensor, valid: Tensor | None = None, eps: float = 1e-8
) -> Tensor:
    """Cross-entropy between the target distribution and the normalised sigmoid map.

    ``q = target / sum(target)``, ``p = (sigmoid(logits) + eps) / sum(sigmoid(logits) + eps)``
    and ``loss = -sum_pixels q * log p``, averaged over valid maps with non-zero target mass:
    exactly the ``frame_heatmap_quality`` measure's KL(q || p) plus the entropy of ``q`` (a
    constant), so it trains the maps the measure scores, in the sigmoid space of the MSE.

    Args:
        logits: ``[B, K, h, w]``.
        targets: ``[B, K, h, w]`` non-negative maps.
        valid: ``[B, K]`` bool.
    """
    _check_maps(logits)
    _check_target(logits, targets)
    valid = _resolve_valid(logits, valid)
    tgt = _sanitize(targets.to(logits.dtype), valid).flatten(2)
    if bool((tgt < 0).any()):
        raise ValueError("sigmoid_distribution_ce_loss targets must be non-negative")
    mass = tgt.sum(-1)
    valid = valid & (mass > 0)
    q = tgt / mass.clamp_min(torch.finfo(tgt.dtype).tiny)[..., None]
    p = torch.sigmoid(_sanitize(logits, valid).flatten(2)) + eps
    log_p = p.log() - p.sum(-1, keepdim=True).log()
    return _masked_mean(-(q * log_p).sum(-1), valid)


def smoothness_loss(
    logits: Tensor, valid: Tensor | None = None, activation: str = "sigmoid"
) -> Tensor:
    """Spatial smoothness: ``mean|dx| + mean|dy|`` of each activated map, averaged over maps.

    ``dx = p[:, :, :, 1:] - p[:, :, :, :-1]`` and ``dy`` likewise along rows; a map with a
    single column (row) has ``mean|dx| = 0`` (``mean|dy| = 0``). The default ``sigmoid`` keeps
    the value independent of the map size (a softmax map's pixel values scale with 1/(h*w)).

    Args:
        logits: ``[B, K, h, w]``.
        valid: ``[B, K]`` bool.
        activation: ``"sigmoid"`` (default), ``"softmax"`` or ``"none"``.
    """
    _check_maps(logits)
    valid = _resolve_valid(logits, valid)
    p = _activate(_sanitize(logits, valid), activation)
    zero = p.new_zeros(p.shape[:2])
    dx = (p[..., :, 1:] - p[..., :, :-1]).abs().mean((-2, -1)) if p.shape[-1] > 1 else zero
    dy = (p[..., 1:, :] - p[..., :-1, :]).abs().mean((-2, -1)) if p.shape[-2] > 1 else zero
    return _masked_mean(dx + dy, valid)


def feature_alignment_loss(
    feats_a: Tensor,
    feats_b: Tensor,
    mask: Tensor | None = None,
    temperature: float = 0.07,
) -> Tensor:
    """Cross-frame feature alignment: symmetric InfoNCE over covisible correspondences.

    Row ``n`` of ``feats_a[b]`` and ``feats_b[b]`` describe the same thing: the same 3D point
    seen in two frames (matched through depth + poses), or — for single-image pretraining
    (1-frame videos) — the same patch seen by the two feature paths (VGGT's 3D features vs
    DINOv3's 2D features resized to VGGT's grid). Features are L2-normalised; within each
    batch element the similarity matrix ``S = a @ b.T / temperature`` over the valid points
    scores every pair, the matched pair (diagonal) is the positive and every other valid point
    of the other frame a negative. ``loss = (CE(S, diag) + CE(S.T, diag)) / 2``, averaged over
    valid anchors of the whole batch. Invalid points are neither anchors nor negatives.

    The leading axis is any grouping of the pairs; the trainer's pretraining passes one row per
    (sample, keyframe slot) (`habitat_fih.models.alignment.alignment_features`), so the negatives
    of a pair are the other pairs of the same two frames, each with its own cells in both frames
    (`habitat_fih.trainers.correspondences`). Closed forms for one row of M valid pairs with
    ``a = b`` (tested): orthonormal features give ``log(1 + (M - 1) exp(-1 / temperature))``; the
    minimum over all unit features (D >= M - 1) is ``log(1 + (M - 1) exp(-M / ((M - 1) *
    temperature)))``, reached by a regular simplex (cosine ``-1 / (M - 1)`` between pairs; by
    Jensen, the mean margin ``s_ij - s_ii`` cannot be below ``-M / (M - 1)``).

    Args:
        feats_a: ``[B, N, D]``.
        feats_b: ``[B, N, D]``.
        mask: ``[B, N]`` bool, False for padded / non-covisible points.
        temperature: > 0.
    """
    if feats_a.dim() != 3 or feats_a.shape != feats_b.shape:
        raise ValueError(
            "feats_a and feats_b must both be [B, N, D], got "
            f"{tuple(feats_a.shape)} and {tuple(feats_b.shape)}"
        )
    if not temperature > 0:
        raise ValueError(f"temperature must be > 0, got {temperature}")
    b, n, _ = feats_a.shape
    if mask is None:
        mask = torch.ones(b, n, dtype=torch.bool, device=feats_a.device)
    elif tuple(mask.shape) != (b, n):
        raise ValueError(f"mask must be [B={b}, N={n}], got shape {tuple(mask.shape)}")
    mask = mask.to(device=feats_a.device, dtype=torch.bool)
    # float32 whatever the features' dtype (bf16 under autocast): logits reach 1 / temperature
    a = F.normalize(_sanitize(feats_a.float(), mask), dim=-1)
    c = F.normalize(_sanitize(feats_b.float(), mask), dim=-1)
    sim = a @ c.transpose(1, 2) / temperature  # [B, N, N]
    # Invalid columns are not negatives; a large finite fill keeps fully masked rows NaN-free.
    sim = sim.masked_fill(~mask[:, None, :], -1e4)
    sim_t = sim.transpose(1, 2).masked_fill(~mask[:, None, :], -1e4)
    diag = torch.arange(n, device=sim.device)
    nll_ab = -sim.log_softmax(-1)[:, diag, diag]  # [B, N]
    nll_ba = -sim_t.log_softmax(-1)[:, diag, diag]  # [B, N]
    return _masked_mean(0.5 * (nll_ab + nll_ba), mask)


# --------------------------------------------------------------------------- fine-tuning


def frame_indexed_mse_loss(logits: Tensor, targets: Tensor, valid: Tensor | None = None) -> Tensor:
    """Fine-tuning a: ``MSE(sigmoid(logits), target)`` per pixel, averaged over valid maps.

    The sigmoid maps the logits into the targets' ``[0, 1]`` range (co-visibility maps); an
    MSE on raw logits would ask unbounded logits to equal probabilities.

    Args:
        logits: ``[B, K, h, w]``.
        targets: ``[B, K, h, w]`` in ``[0, 1]``.
        valid: ``[B, K]`` bool.
    """
    p, tgt, valid = _sigmoid_maps_and_targets(logits, targets, valid)
    per_map = (p - tgt).pow(2).mean((-2, -1))  # [B, K]
    return _masked_mean(per_map, valid)


def distinctness_loss(
    logits: Tensor, valid: Tensor | None = None, activation: str = "sigmoid"
) -> Tensor:
    """Fine-tuning b: mean ``|cos(p_i, p_j)|`` over ordered pairs ``i != j`` of valid maps.

    ``p`` = activated maps flattened to ``[K, h*w]`` (``sigmoid`` by default, so ``cos`` is in
    ``[0, 1]``). Identical maps give 1, disjoint-support maps 0. Pairs are taken within a
    batch element; batch elements with fewer than two valid maps contribute no pairs.

    Args:
        logits: ``[B, K, h, w]``.
        valid: ``[B, K]`` bool.
        activation: ``"sigmoid"`` (default), ``"softmax"`` or ``"none"``.
    """
    _check_maps(logits)
    valid = _resolve_valid(logits, valid)
    p = _activate(_sanitize(logits, valid), activation).flatten(2)  # [B, K, h*w]
    p = F.normalize(p, dim=-1)
    cos = p @ p.transpose(1, 2)  # [B, K, K]
    k = logits.shape[1]
    off_diag = ~torch.eye(k, dtype=torch.bool, device=logits.device)
    pairs = valid[:, :, None] & valid[:, None, :] & off_diag  # [B, K, K]
    return _masked_mean(cos.abs(), pairs)


def _safe_norm(x: Tensor) -> Tensor:
    """L2 norm over the last dim with a finite gradient at 0."""
    sq = x.pow(2).sum(-1)
    positive = sq > 0
    # Double where: sqrt never sees 0, so its backward never produces inf * 0 = NaN.
    root = torch.where(positive, sq, torch.ones_like(sq)).sqrt()
    return torch.where(positive, root, torch.zeros_like(root))


def temporal_consistency_loss(
    logits: Tensor,
    valid: Tensor | None = None,
    target_norm: float = 0.5,
    activation: str = "softmax",
) -> Tensor:
    """Fine-tuning c: ``(||p_{k+1} - p_k||_2 - target_norm)^2`` over consecutive valid slots.

    Slots ``k`` and ``k + 1`` form a pair when both are valid (the sampler returns sorted
    frames, so consecutive slots are consecutive keyframes in time). With the default
    ``softmax`` maps the norm lies in ``[0, sqrt(2)]`` whatever the map size, so the document's
    0.5 means "moderately different maps"; on sigmoid maps the norm grows with
    ``sqrt(h * w)`` and 0.5 would demand nearly identical maps.

    Args:
        logits: ``[B, K, h, w]``.
        valid: ``[B, K]`` bool.
        target_norm: the document's 0.5.
        activation: ``"softmax"`` (default), ``"sigmoid"`` or ``"none"``.
    """
    _check_maps(logits)
    valid = _resolve_valid(logits, valid)
    p = _activate(_sanitize(logits, valid), activation).flatten(2)  # [B, K, h*w]
    norms = _safe_norm(p[:, 1:] - p[:, :-1])  # [B, K-1]
    pairs = valid[:, 1:] & valid[:, :-1]  # [B, K-1]
    return _masked_mean((norms - target_norm).pow(2), pairs)


def spatial_reasoning_loss(
    logits: Tensor,
    valid: Tensor | None = None,
    entropy_target: float | None = None,
    entropy_target_fraction: float = 0.72,
) -> Tensor:
    """Fine-tuning d, spatial reasoning — the entropy term: ``(H(softmax(map)) - target)^2``
    averaged over valid maps.

    ``H = -sum p log p`` in nats over the flattened map, in ``[0, ln(h*w)]``. The document fixes
    the target at 6.0, which only suits 64x64 maps (``ln 4096 = 8.32``, 6.0 ≈ 72 %); at 16x16
    the maximum is ``ln 256 = 5.55`` and 6.0 is unreachable. So the target is
    ``entropy_target`` when given (6.0 reproduces the document), else
    ``entropy_target_fraction * ln(h * w)``.

    Args:
        logits: ``[B, K, h, w]``.
        valid: ``[B, K]`` bool.
        entropy_target: absolute target in nats, or ``None``.
        entropy_target_fraction: size-relative target when ``entropy_target`` is ``None``.
    """
    _check_maps(logits)
    valid = _resolve_valid(logits, valid)
    h, w = logits.shape[-2:]
    target = (
        entropy_target if entropy_target is not None else entropy_target_fraction * math.log(h * w)
    )
    log_p = _sanitize(logits, valid).flatten(2).log_softmax(-1)  # [B, K, h*w]
    entropy = -(log_p.exp() * log_p).sum(-1)  # [B, K]
    return _masked_mean((entropy - target).pow(2), valid)


# --------------------------------------------------------------------------- main trainer


def spatial_consistency_loss(
    logits: Tensor, targets: Tensor, valid: Tensor | None = None
) -> Tensor:
    """Main-stage spatial consistency between adjacent keyframes, anchored to the geometry.

    For consecutive valid slots ``k, k + 1``: the per-pixel change of the predicted sigmoid
    maps must follow the change of the targets,
    ``mean_pixels((p_{k+1} - p_k) - (t_{k+1} - t_k))^2``, averaged over valid pairs. Unlike a
    plain "adjacent maps should agree" penalty it does not fight distinctness: where the
    targets differ, the predictions are asked to differ by as much.

    Args:
        logits: ``[B, K, h, w]``.
        targets: ``[B, K, h, w]`` in ``[0, 1]``.
        valid: ``[B, K]`` bool.
    """
    p, tgt, valid = _sigmoid_maps_and_targets(logits, targets, valid)
    diff = (p[:, 1:] - p[:, :-1]) - (tgt[:, 1:] - tgt[:, :-1])  # [B, K-1, h, w]
    pairs = valid[:, 1:] & valid[:, :-1]
    return _masked_mean(diff.pow(2).mean((-2, -1)), pairs)


# --------------------------------------------------------------------------- actions


def inflection_weight(
    previous_action: int | None, action: int, inflection_coef: float = 3.2
) -> float:
    """VLN-CE inflection weight of ONE step, given the expert action of the step before it
    (None at an episode's first step): the rule of :func:`inflection_weights`, for a sample
    weighted while its episode is still running (the trainer's collection).

    A step is an inflection when its expert action differs from the previous step's; the
    first step always counts (VLN-CE prepends a 1). Inflections weigh ``inflection_coef``,
    other steps 1.
    """
    inflection = previous_action is None or previous_action != action
    return float(inflection_coef) if inflection else 1.0


def inflection_weights(
    actions: Tensor, mask: Tensor | None = None, inflection_coef: float = 3.2
) -> Tensor:
    """VLN-CE inflection weights of expert action sequences (:func:`inflection_weight` of
    every step; tested to agree).

    A step is an inflection when its expert action differs from the previous step's; the
    first step always counts (VLN-CE prepends a 1). Inflections weigh ``inflection_coef``,
    other steps 1, masked (padding) steps 0.

    Args:
        actions: ``[B, T]`` expert actions (padding trails the real steps).
        mask: ``[B, T]`` bool, False for padding.
        inflection_coef: weight of inflection steps (VLN-CE R2R: 3.2).

    Returns:
        ``[B, T]`` float weights.
    """
    if actions.dim() != 2:
        raise ValueError(f"actions must be [B, T], got shape {tuple(actions.shape)}")
    first = torch.ones_like(actions[:, :1], dtype=torch.bool)
    inflection = torch.cat([first, actions[:, 1:] != actions[:, :-1]], dim=1)  # [B, T]
    weights = torch.where(inflection, float(inflection_coef), 1.0).float()
    if mask is not None:
        if mask.shape != actions.shape:
            raise ValueError(
                f"mask must be {tuple(actions.shape)} like actions, got {tuple(mask.shape)}"
            )
        weights = weights * mask.to(weights.dtype)
    return weights


def action_loss(
    logits: Tensor,
    actions: Tensor,
    mask: Tensor | None = None,
    inflection_coef: float = 3.2,
    weights: Tensor | None = None,
) -> Tensor:
    """Inflection-weighted action cross-entropy, normalised as VLN-CE does.

    Sequences (``logits [B, T, A]``, ``actions [B, T]``): per episode
    ``sum_t w_t * ce_t / sum_t w_t``, then the mean over episodes with at least one valid step
    (VLN-CE ``((weights * loss).sum(0) / weights.sum(0)).mean()``). Independent steps
    (``logits [B, A]``, ``actions [B]``): ``sum w * ce / sum w`` over the batch; without
    ``weights`` every single step is its own "first step", so this is the plain mean CE —
    pass ``weights`` computed over the episodes (:func:`inflection_weights`) to weight them.

    Args:
        logits: ``[B, T, A]`` or ``[B, A]``.
        actions: ``[B, T]`` or ``[B]`` expert action ids in ``[0, A)`` on valid steps.
        mask: same shape as ``actions``, bool, False for padding.
        inflection_coef: VLN-CE's 3.2.
        weights: optional precomputed weights shaped like ``actions`` (overrides the
            inflection rule; still multiplied by ``mask``).
    """
    if logits.dim() not in (2, 3) or actions.shape != logits.shape[:-1]:
        raise ValueError(
            "logits must be [B, T, A] with actions [B, T], or [B, A] with actions [B]; got "
            f"{tuple(logits.shape)} and {tuple(actions.shape)}"
        )
    sequential = logits.dim() == 3
    if mask is None:
        mask = torch.ones_like(actions, dtype=torch.bool)
    elif mask.shape != actions.shape:
        raise ValueError(f"mask must be {tuple(actions.shape)}, got {tuple(mask.shape)}")
    mask = mask.to(device=logits.device, dtype=torch.bool)
    actions = actions.to(logits.device).long()
    num_actions = logits.shape[-1]
    if bool(((actions < 0) | (actions >= num_actions))[mask].any()):
        raise ValueError(f"actions on valid steps must be in [0, {num_actions})")
    if weights is None:
        act2d = actions if sequential else actions[:, None]
        mask2d = mask if sequential else mask[:, None]
        w = inflection_weights(act2d, mask2d, inflection_coef)
        w = w if sequential else w[:, 0]
    else:
        if weights.shape != actions.shape:
            raise ValueError(f"weights must be {tuple(actions.shape)}, got {tuple(weights.shape)}")
        w = weights.to(logits.device).float() * mask
    w = w.to(logits.dtype)
    safe_logits = _sanitize(logits, mask)
    ce = F.cross_entropy(
        safe_logits.reshape(-1, num_actions),
        torch.where(mask, actions, 0).reshape(-1),
        reduction="none",
    ).view_as(w)
    weighted = _sanitize(ce * w, mask)
    if sequential:
        per_episode = weighted.sum(1) / w.sum(1).clamp_min(torch.finfo(w.dtype).tiny)  # [B]
        has_steps = w.sum(1) > 0
        return _masked_mean(per_episode, has_steps)
    total_w = w.sum()
    return weighted.sum() / total_w.clamp_min(torch.finfo(w.dtype).tiny)


# --------------------------------------------------------------------------- per stage


def _require(mapping: Mapping[str, Tensor], key: str, where: str, term: str) -> Tensor:
    if key not in mapping or mapping[key] is None:
        raise KeyError(f"{where}[{key!r}] is needed by the {term!r} loss term (weight > 0)")
    return mapping[key]


def _map_inputs(
    preds: Mapping[str, Tensor], targets: Mapping[str, Tensor], suffix: str = ""
) -> tuple[Tensor, Tensor, Tensor]:
    key = f"heatmap_logits{suffix}"
    logits = _require(preds, key, "preds", f"heatmap{suffix}")
    _check_maps(logits, f"preds[{key!r}]")
    maps = _require(targets, f"heatmaps{suffix}", "targets", f"heatmap{suffix}")
    valid = _resolve_valid(logits, targets.get(f"valid{suffix}"))
    frame_indices = preds.get("frame_indices")
    if frame_indices is not None:
        valid = valid & (_resolve_valid(logits, frame_indices >= 0))
    return logits, maps, valid


def _pred_kinds(preds: Mapping[str, Tensor]) -> list[str]:
    """The target kinds whose logits are in `preds` (covisibility when none is: its KeyError)."""
    kinds = [k for k in HEATMAP_KINDS if preds.get(f"heatmap_logits{kind_suffix(k)}") is not None]
    return kinds or ["covisibility"]


def _map_terms(
    stage: str, config: LossConfig, logits: Tensor, maps: Tensor, valid: Tensor
) -> dict[str, tuple[float, Tensor]]:
    """The map terms (weight, value) of one stage for one kind's maps."""
    terms: dict[str, tuple[float, Tensor]] = {}
    if stage == "pretrain":
        cfg = config.pretrain
        terms["heatmap_ce"] = (cfg.heatmap_weight, gaussian_heatmap_ce_loss(logits, maps, valid))
        terms["smoothness"] = (cfg.smoothness_weight, smoothness_loss(logits, valid))
    elif stage == "finetune":
        cfg = config.finetune
        terms["heatmap_mse"] = (cfg.heatmap_weight, frame_indexed_mse_loss(logits, maps, valid))
        terms["distinctness"] = (cfg.distinctness_weight, distinctness_loss(logits, valid))
        terms["temporal"] = (
            cfg.temporal_weight,
            temporal_consistency_loss(logits, valid, cfg.temporal_target_norm),
        )
        terms["spatial_reasoning"] = (
            cfg.spatial_reasoning_weight,
            spatial_reasoning_loss(logits, valid, cfg.entropy_target, cfg.entropy_target_fraction),
        )
    else:
        cfg = config.main
        terms["heatmap_mse"] = (cfg.heatmap_weight, frame_indexed_mse_loss(logits, maps, valid))
        if cfg.heatmap_distribution_weight > 0:
            terms["heatmap_distribution"] = (
                cfg.heatmap_distribution_weight,
                sigmoid_distribution_ce_loss(logits, maps, valid),
            )
        terms["spatial_consistency"] = (
            cfg.spatial_consistency_weight,
            spatial_consistency_loss(logits, maps, valid),
        )
        terms["temporal_coherence"] = (
            cfg.temporal_coherence_weight,
            temporal_consistency_loss(logits, valid, cfg.temporal_target_norm),
        )
    return terms


def compute_stage_loss(
    stage: str,
    preds: Mapping[str, Tensor],
    targets: Mapping[str, Tensor],
    config: LossConfig | None = None,
) -> tuple[Tensor, dict[str, Tensor]]:
    """Weighted total loss of one training stage and every term for logging.

    Args:
        stage: ``"pretrain"``, ``"finetune"`` or ``"main"``.
        preds: ``heatmap_logits [B, K, h, w]`` (covisibility; required unless another kind's
            ``heatmap_logits_<kind>`` is given, each kind's map terms then computed too, see the
            module docstring); ``frame_indices [B, K]`` (optional,
            ``-1`` slots are masked); ``action_logits [B, A]`` or ``[B, T, A]``;
            ``align_feats_a`` / ``align_feats_b [G, N, D]`` (pretrain; G rows of N pairs, e.g.
            one row per (sample, keyframe slot)).
        targets: ``heatmaps [B, K, h, w]`` (required); ``valid [B, K]`` bool (optional);
            ``heatmaps_<kind>`` / ``valid_<kind>`` for each other kind in ``preds``;
            ``actions [B]`` / ``[B, T]``, ``action_mask``, ``action_weights`` (optional);
            ``align_mask [G, N]`` (optional).
        config: :class:`LossConfig` (default weights from the document).

    Returns:
        ``(total, terms)``: ``total`` a scalar with grad; ``terms`` maps each computed term
        (``heatmap_ce``, ``smoothness``, ``alignment`` / ``heatmap_mse``, ``distinctness``,
        ``temporal``, ``spatial_reasoning`` / ``heatmap_mse``, ``spatial_consistency``,
        ``temporal_coherence``; plus ``action`` when its inputs are given) and ``total`` to a
        detached scalar. A term whose optional inputs are absent is skipped when its weight is
        0 and raises ``KeyError`` naming the key when its weight is > 0.
    """
    if stage not in STAGES:
        raise ValueError(f"stage must be one of {STAGES}, got {stage!r}")
    config = config or LossConfig()
    stage_cfg = getattr(config, stage)
    terms: dict[str, tuple[float, Tensor]] = {}
    logits: Tensor | None = None
    for kind in _pred_kinds(preds):
        suffix = kind_suffix(kind)
        kind_logits, maps, valid = _map_inputs(preds, targets, suffix)
        logits = kind_logits if logits is None else logits
        kind_weight = 1.0 if kind == "covisibility" else float(getattr(stage_cfg, f"{kind}_weight"))
        for name, (weight, value) in _map_terms(stage, config, kind_logits, maps, valid).items():
            terms[f"{name}{suffix}"] = (weight if not suffix else weight * kind_weight, value)
    assert logits is not None

    def add_action(weight: float, coef: float) -> None:
        if weight == 0 and ("action_logits" not in preds or "actions" not in targets):
            return
        logits_a = _require(preds, "action_logits", "preds", "action")
        actions = _require(targets, "actions", "targets", "action")
        terms["action"] = (
            weight,
            action_loss(
                logits_a,
                actions,
                targets.get("action_mask"),
                coef,
                targets.get("action_weights"),
            ),
        )

    if stage == "pretrain":
        cfg = config.pretrain
        if "align_feats_a" in preds or cfg.alignment_weight > 0:
            feats_a = _require(preds, "align_feats_a", "preds", "alignment")
            feats_b = _require(preds, "align_feats_b", "preds", "alignment")
            terms["alignment"] = (
                cfg.alignment_weight,
                feature_alignment_loss(
                    feats_a, feats_b, targets.get("align_mask"), cfg.alignment_temperature
                ),
            )
    elif stage == "finetune":
        add_action(config.finetune.action_weight, config.finetune.inflection_coef)
    else:
        add_action(config.main.action_weight, config.main.inflection_coef)

    total = logits.new_zeros(())
    for weight, value in terms.values():
        if weight > 0:
            total = total + weight * value
    logged = {name: value.detach() for name, (_, value) in terms.items()}
    logged["total"] = total.detach()
    return total, logged
