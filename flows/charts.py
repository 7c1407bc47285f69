"""Charts logged with each run."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # no display on servers and CI
import matplotlib.pyplot as plt
import numpy as np


def metric_comparison(
    scores: dict[str, dict[str, float]], metrics: list[str], path: Path, title: str
) -> Path:
    """Grouped bars: one group per metric, one bar per model."""
    fig, ax = plt.subplots(figsize=(max(6, 1.3 * len(metrics)), 4))
    width = 0.8 / max(1, len(scores))
    x = np.arange(len(metrics))
    for i, (name, values) in enumerate(scores.items()):
        ax.bar(x + i * width, [values.get(m, np.nan) for m in metrics], width, label=name)
    ax.set_xticks(x + width * (len(scores) - 1) / 2, metrics, rotation=30, ha="right")
    ax.set_title(title)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
