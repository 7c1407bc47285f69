"""The quality gate: may a newly trained version take the champion alias, and when none
beats the strongest simple baseline, should that baseline be served instead?"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class GateDecision:
    promote: bool
    reason: str
    baseline: str | None = None  # register and serve this baseline instead of the candidate


def decide(
    candidate: float,
    strongest: float,
    champion: float | None,
    min_relative_gain: float,
    metric: str = "ndcg_at_10",
    strongest_name: str = "popularity",
    none_yet: str = "no champion yet",
) -> GateDecision:
    """Promote only a candidate that beats the strongest baseline and the champion by the
    margin. A candidate below the strongest baseline is never promoted; the baseline is
    served instead when there is no champion yet, or the champion scores below it too,
    so a shop always gets an answer at least as good as the simplest strong one.

    All scores come from the same holdout, so they are comparable even when the champion
    was trained on an older window. ``none_yet`` says why ``champion`` is None.
    """
    need = 1.0 + min_relative_gain
    if not candidate > strongest * need:
        short = (
            f"{metric} {candidate:.4f} does not beat the strongest baseline, {strongest_name} "
            f"{strongest:.4f}, by {min_relative_gain:.0%}"
        )
        if champion is None:
            return GateDecision(
                True, f"{short}; {none_yet}: {strongest_name} is served", strongest_name
            )
        if champion < strongest:
            return GateDecision(
                True,
                f"{short}; the champion's {champion:.4f} is below it too: {strongest_name} "
                "is served",
                strongest_name,
            )
        return GateDecision(False, f"{short}; the champion ({champion:.4f}) stays")
    if champion is None:
        return GateDecision(
            True,
            f"{none_yet}; {metric} {candidate:.4f} beats the strongest baseline, "
            f"{strongest_name} {strongest:.4f}",
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
        f"and the strongest baseline, {strongest_name} {strongest:.4f}, by more than "
        f"{min_relative_gain:.0%}",
    )


def gate(
    scores: dict[str, dict[str, float]],
    dataset: str,
    champion_dataset: str | None,
    champion_version: str | None,
    min_relative_gain: float,
    metric: str = "ndcg_at_10",
    baselines: tuple[str, ...] = ("popularity",),
    champion_baseline: str | None = None,
) -> GateDecision:
    """The gate over a run's scores: ``candidate``, the ``baselines`` (the strongest one
    on ``metric`` is the bar), and an optional ``champion``.

    A champion trained on another dataset is not comparable: the candidate is kept out,
    and switching datasets is an explicit ``cartlift promote``. A champion that serves a
    baseline (``champion_baseline``) is not scored: the strongest baseline, refitted on
    this window, is the bar it set.
    """
    if champion_dataset is not None and champion_dataset != dataset:
        return GateDecision(
            False,
            f"the champion (version {champion_version}) was trained on dataset "
            f"'{champion_dataset}', not '{dataset}': not comparable; "
            "use `cartlift promote --version N` to switch",
        )
    strongest = max((name for name in baselines if name in scores), key=lambda n: scores[n][metric])
    champ = scores.get("champion")
    return decide(
        scores["candidate"][metric],
        scores[strongest][metric],
        champ[metric] if champ else None,
        min_relative_gain,
        metric,
        strongest,
        "no champion yet"
        if champion_baseline is None
        else f"the champion (version {champion_version}) serves the baseline {champion_baseline}",
    )
