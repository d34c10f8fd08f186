"""The individual loss terms of the FIH model's training stages (combined per stage by
`habitat_fih.models.losses.compute_stage_loss`, whose module docstring maps each logged term to
its function and weight).

Map losses take ``logits [B, K, h, w]`` (one map per keyframe slot) and a ``valid [B, K]`` bool
mask (False for padding slots and for unusable targets). Masked maps contribute nothing (their
logits are replaced by zeros through ``torch.where`` before any arithmetic, so NaN / inf in
padding cannot leak into values or gradients); a fully masked batch gives a zero that is still
attached to the graph. Each loss returns a scalar. The action term and its VLN-CE inflection
weights are here too.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor

ACTIVATIONS = ("sigmoid", "softmax", "none")


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
    raise ValueError(f"activation must be one of {ACTIVATIONS}, got {activation!r}")


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


#: index of STOP in the VLN-CE action order (`habitat_fih.models.heads.action.ACTION_NAMES`)
STOP_ACTION = 0


def action_sample_weight(
    previous_action: int | None,
    action: int,
    inflection_coef: float = 3.2,
    stop_weight: float = 1.0,
) -> float:
    """The action-loss weight of ONE collected step: its :func:`inflection_weight` times
    `stop_weight` when the expert's action is STOP (``losses.<stage>.stop_weight``; 1 = VLN-CE's
    rule). STOP is one step per episode (1.4 % of the bundled train split's expert steps), so
    an agent trained with VLN-CE's weights alone may never choose it."""
    weight = inflection_weight(previous_action, action, inflection_coef)
    return weight * float(stop_weight) if int(action) == STOP_ACTION else weight


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


def goal_distance_loss(
    predicted: Tensor, target: Tensor, scale: float = 10.0, beta: float = 0.1
) -> Tensor:
    """Progress-monitor loss: smooth-L1 (Huber, ``beta`` in units of `scale`) between the
    predicted and the simulator's remaining distance to the goal, both divided by `scale`
    metres, averaged over the steps whose target is finite (0, with grad, when none is).

    Args:
        predicted: ``[B]`` metres (`FIHOutput.goal_distance`).
        target: ``[B]`` metres (``distance_to_goal``; NaN / inf = unknown, masked).
        scale: metres per loss unit (`ActionHeadConfig.distance_scale`).
        beta: the Huber knee, in loss units (0.1 = 1 m at the default scale).
    """
    if predicted.shape != target.shape or predicted.dim() != 1:
        raise ValueError(
            "goal_distance_loss needs predicted and target both [B], got "
            f"{tuple(predicted.shape)} and {tuple(target.shape)}"
        )
    if not scale > 0 or not beta > 0:
        raise ValueError(f"goal_distance_loss scale and beta must be > 0, got {scale}, {beta}")
    target = target.to(predicted.device, predicted.dtype)
    known = torch.isfinite(target)
    if not bool(known.any()):
        return predicted.sum() * 0.0
    diff = (predicted[known] - target[known]) / float(scale)
    return torch.nn.functional.smooth_l1_loss(diff, torch.zeros_like(diff), beta=float(beta))
