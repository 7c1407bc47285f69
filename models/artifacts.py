"""Saving and loading the model objects cartlift writes (pickles it made itself)."""

from __future__ import annotations

import pickle  # only artifacts of the trusted store (docs/security.md)  # nosec B403
from pathlib import Path
from typing import TypeVar

T = TypeVar("T")


def save_pickle(obj: object, path: Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("wb") as fh:
        pickle.dump(obj, fh, protocol=pickle.HIGHEST_PROTOCOL)
    return path


def load_pickle(path: Path, kind: type[T]) -> T:
    """Load and check the type, so a wrong file fails here and not deep in serving."""
    with Path(path).open("rb") as fh:
        obj = pickle.load(fh)  # see docs/security.md, "Model artifacts"  # nosec B301
    if not isinstance(obj, kind):
        raise TypeError(f"{path} does not hold a cartlift {kind.__name__}")
    return obj
