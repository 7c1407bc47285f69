"""When to retrain: drift, falling quality, or an old champion; never twice in a cooldown."""

from __future__ import annotations

from dataclasses import dataclass, field

from models.config import MonitorConfig


@dataclass(frozen=True)
class RetrainDecision:
    retrain: bool
    reasons: list[str] = field(default_factory=list)  # why it is due (empty when not)
    notes: list[str] = field(default_factory=list)  # what was checked and found fine or held


def decide(
    cfg: MonitorConfig,
    drift_share: float | None,
    drifted: list[str],
    quality: float | None,
    baseline_quality: float | None,
    champion_age_days: float | None,
    hours_since_retrain: float | None,
) -> RetrainDecision:
    """Retraining is due when any trigger fires and the cooldown has passed.

    ``None`` means "not measured" (e.g. too little feedback): it never fires a trigger.
    """
    reasons, notes = [], []
    if drift_share is None:
        notes.append("data drift not measured")
    elif drift_share >= cfg.drift_share:
        reasons.append(
            f"data drift: {drift_share:.0%} of watched columns drifted "
            f"({', '.join(drifted)}), threshold {cfg.drift_share:.0%}"
        )
    else:
        notes.append(f"data drift {drift_share:.0%} below {cfg.drift_share:.0%}")
    if quality is None or baseline_quality is None or baseline_quality <= 0:
        notes.append("quality on feedback not measured (too few served lists or no baseline)")
    else:
        drop = 1 - quality / baseline_quality
        if drop >= cfg.quality_drop:
            reasons.append(
                f"quality: precision@{cfg.k} on feedback {quality:.4f} is {drop:.0%} below "
                f"the baseline {baseline_quality:.4f} (limit {cfg.quality_drop:.0%})"
            )
        else:
            notes.append(f"quality {quality:.4f} vs baseline {baseline_quality:.4f}")
    if champion_age_days is not None and champion_age_days > cfg.max_age_days:
        reasons.append(
            f"age: the champion is {champion_age_days:.1f} days old (maximum {cfg.max_age_days:g})"
        )
    if reasons and hours_since_retrain is not None and hours_since_retrain < cfg.cooldown_hours:
        notes.append(
            f"retraining held back: the last one was {hours_since_retrain:.1f} h ago "
            f"(cooldown {cfg.cooldown_hours:g} h); due for: " + "; ".join(reasons)
        )
        return RetrainDecision(False, [], notes)
    return RetrainDecision(bool(reasons), reasons, notes)
