"""Which variant of a running experiment answers a request.

A customer (or an anonymous visitor's session) is assigned by a salted hash of their id:
the same on every request and every worker, with no state to share, and split afresh
by each experiment (the salt names the experiment). Requests with neither id go to the
champion and count for no variant.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Literal

Variant = Literal["champion", "challenger"]
CHAMPION: Variant = "champion"
CHALLENGER: Variant = "challenger"
_SPAN = float(2**64)


@dataclass(frozen=True)
class Experiment:
    """A running experiment: the challenger's version and its share of customers."""

    challenger: str  # the registered version holding the challenger alias
    share: float  # of customers (or sessions) the challenger answers, in (0, 1)
    salt: str  # names the experiment: a new one splits customers afresh

    def __post_init__(self) -> None:
        if not 0.0 < self.share < 1.0:
            raise ValueError(f"an experiment's share must lie in (0, 1), not {self.share}")


def bucket(salt: str, unit: str) -> float:
    """A stable draw in [0, 1) for ``unit`` under ``salt`` (BLAKE2b: uniform, keyed by
    the salt, about a microsecond)."""
    digest = hashlib.blake2b(unit.encode(), digest_size=8, key=salt.encode()[:64]).digest()
    return int.from_bytes(digest, "big") / _SPAN


def assign(experiment: Experiment | None, unit: str | None) -> Variant:
    """The variant answering ``unit`` (a customer id, else a session id; None: neither)."""
    if experiment is None or unit is None:
        return CHAMPION
    return CHALLENGER if bucket(experiment.salt, unit) < experiment.share else CHAMPION


def experiment_name(model: str, alias: str, challenger: str) -> str:
    """An experiment's name, which is also its salt: the registered model, the challenger
    alias and the challenger's version (the service and the flow that judges it agree)."""
    return f"{model}@{alias}:{challenger}"
