"""Training losses for frame-indexed heatmaps and actions, per training stage: the stage
configs and `compute_stage_loss`, which weights and sums the terms of
`habitat_fih.models.loss_terms` (re-exported here). How the terms mask padding is said there.

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
``goal_distance``         :func:`goal_distance_loss`           finetune / main
                          (progress monitor, models with       ``goal_distance``
                          ``action.goal_distance``)
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

from torch import Tensor

# the terms live in loss_terms (re-exported here: this module is where stages are put together)
from habitat_fih.models.loss_terms import (
    _check_maps,
    _resolve_valid,
    action_loss,
    action_sample_weight,
    distinctness_loss,
    feature_alignment_loss,
    frame_indexed_mse_loss,
    gaussian_heatmap_ce_loss,
    goal_distance_loss,
    inflection_weight,
    inflection_weights,
    sigmoid_distribution_ce_loss,
    smoothness_loss,
    spatial_consistency_loss,
    spatial_reasoning_loss,
    temporal_consistency_loss,
)

__all__ = [
    "HEATMAP_KINDS",
    "STAGES",
    "TRAINING_STAGES",
    "VGGT_STAGE",
    "FinetuneLossConfig",
    "LossConfig",
    "MainLossConfig",
    "PretrainLossConfig",
    "action_loss",
    "compute_stage_loss",
    "goal_distance_loss",
    "distinctness_loss",
    "feature_alignment_loss",
    "frame_indexed_mse_loss",
    "gaussian_heatmap_ce_loss",
    "action_sample_weight",
    "inflection_weight",
    "inflection_weights",
    "kind_suffix",
    "sigmoid_distribution_ce_loss",
    "smoothness_loss",
    "spatial_consistency_loss",
    "spatial_reasoning_loss",
    "temporal_consistency_loss",
]

#: The heatmap / policy stages (each has a `LossConfig` entry and a `compute_stage_loss` path).
STAGES: tuple[str, ...] = ("pretrain", "finetune", "main")
#: The geometry stage: VGGT's camera / depth / point heads (and, per `StageSpec.vggt_aggregator`,
#: its aggregator) trained on simulator cameras and depth with `habitat_fih.models.vggt.losses`.
VGGT_STAGE = "vggt"
#: Every stage the ``fih`` trainer runs and `FIHModel.set_stage` knows.
TRAINING_STAGES: tuple[str, ...] = (VGGT_STAGE, *STAGES)
#: Heatmap target kinds, in the order their terms are computed (the ``frame_heatmaps``
#: sensor's `TARGET_KINDS`).
HEATMAP_KINDS: tuple[str, ...] = ("covisibility", "camera_position")


def kind_suffix(kind: str) -> str:
    """Key / term-name suffix of a target kind: ``""`` for covisibility, else ``"_<kind>"``."""
    if kind not in HEATMAP_KINDS:
        raise ValueError(f"heatmap target kind must be one of {HEATMAP_KINDS}, got {kind!r}")
    return "" if kind == "covisibility" else f"_{kind}"


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
        stop_weight: extra factor on the action CE of steps whose expert action is STOP (on top
            of the inflection weight; 1 = VLN-CE's rule; `action_sample_weight`).
        goal_distance_weight: weight of the progress monitor's :func:`goal_distance_loss`
            (used only when the model predicts the distance, ``action.goal_distance``).
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
    stop_weight: float = 1.0
    goal_distance_weight: float = 1.0
    camera_position_weight: float = 1.0

    def __post_init__(self) -> None:
        _check_nonneg(
            self,
            (
                "camera_position_weight",
                "goal_distance_weight",
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
        if not self.stop_weight > 0.0:
            raise ValueError(f"FinetuneLossConfig.stop_weight must be > 0, got {self.stop_weight}")


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
        stop_weight: extra factor on the action CE of steps whose expert action is STOP (on top
            of the inflection weight; 1 = VLN-CE's rule; `action_sample_weight`).
        goal_distance_weight: weight of the progress monitor's :func:`goal_distance_loss`
            (used only when the model predicts the distance, ``action.goal_distance``).
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
    stop_weight: float = 1.0
    goal_distance_weight: float = 1.0
    heatmap_distribution_weight: float = 0.0
    camera_position_weight: float = 1.0

    def __post_init__(self) -> None:
        _check_nonneg(
            self,
            (
                "camera_position_weight",
                "goal_distance_weight",
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
        if not self.stop_weight > 0.0:
            raise ValueError(f"MainLossConfig.stop_weight must be > 0, got {self.stop_weight}")


@dataclass
class LossConfig:
    """All stages' loss settings."""

    pretrain: PretrainLossConfig = field(default_factory=PretrainLossConfig)
    finetune: FinetuneLossConfig = field(default_factory=FinetuneLossConfig)
    main: MainLossConfig = field(default_factory=MainLossConfig)


# --------------------------------------------------------------------------- helpers


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
    if stage != "pretrain" and "goal_distance" in preds:
        weight = float(getattr(config, stage).goal_distance_weight)
        if weight > 0 or "goal_distance" in targets:
            target = _require(targets, "goal_distance", "targets", "goal_distance")
            terms["goal_distance"] = (weight, goal_distance_loss(preds["goal_distance"], target))

    total = logits.new_zeros(())
    for weight, value in terms.values():
        if weight > 0:
            total = total + weight * value
    logged = {name: value.detach() for name, (_, value) in terms.items()}
    logged["total"] = total.detach()
    return total, logged
