"""The quality gate: may a newly trained version take the champion alias?"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class GateDecision:
    promote: bool
    reason: str


def decide(
    candidate: float,
    popularity: float,
    champion: float | None,
    min_relative_gain: float,
    metric: str = "ndcg_at_10",
) -> GateDecision:
    """Promote only a candidate that beats popularity and the champion by the margin.

    All three scores come from the same holdout, so they are comparable even when the
    champion was trained on an older window.
    """
    need = 1.0 + min_relative_gain
    if not candidate > popularity * need:
        return GateDecision(
            False,
            f"{metric} {candidate:.4f} does not beat popularity {popularity:.4f} "
            f"by {min_relative_gain:.0%}",
        )
    if champion is None:
        return GateDecision(
            True, f"no champion yet; {metric} {candidate:.4f} beats popularity {popularity:.4f}"
        )
    if not candidate > champion * need:
        return GateDecision(
            False,
            f"{metric} {candidate:.4f} does not beat the champion's {champion:.4f} "
            f"on this holdout by {min_relative_gain:.0%}",
        )
    return GateDecision(
        True,
        f"{metric} {candidate:.4f} beats the champion's {champion:.4f} "
        f"and popularity {popularity:.4f} by more than {min_relative_gain:.0%}",
    )


def gate(
    scores: dict[str, dict[str, float]],
    dataset: str,
    champion_dataset: str | None,
    champion_version: str | None,
    min_relative_gain: float,
    metric: str = "ndcg_at_10",
) -> GateDecision:
    """The gate over a run's scores (``candidate``, ``popularity``, optional ``champion``).

    A champion trained on another dataset is not comparable: the candidate is kept out,
    and switching datasets is an explicit ``cartlift promote``.
    """
    if champion_dataset is not None and champion_dataset != dataset:
        return GateDecision(
            False,
            f"the champion (version {champion_version}) was trained on dataset "
            f"'{champion_dataset}', not '{dataset}': not comparable; "
            "use `cartlift promote --version N` to switch",
        )
    champ = scores.get("champion")
    return decide(
        scores["candidate"][metric],
        scores["popularity"][metric],
        champ[metric] if champ else None,
        min_relative_gain,
        metric,
    )
