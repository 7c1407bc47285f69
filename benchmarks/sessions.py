"""What a visitor does next (issue 18's offline protocol): session recommenders on the
default shop and on UCI Online Retail (an invoice's lines in order as the session).

The holdout is the last ``features.holdout_days`` (30) days, as in the quality report.
Every choice is made on a validation window carved from the training window (its last
30 days against what came before): the blend's weights and, for each session-kNN
baseline, whether the prefix's own items may come back (so each baseline is its strongest
version). Then everything is refit on the whole training window and scored on the
holdout's sessions (at most 5,000, sampled with a seed), visitors treated as anonymous.
Printed per shop: hit rate@10 and MRR@10 of popularity, SKNN, V-SKNN and cartlift's
session blend, and the blend against the strongest of them with a paired 95% interval.

    uv run python benchmarks/sessions.py [--shops default online-retail] [--sessions 5000]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

_ROOT = Path(__file__).resolve().parents[1]
sys.path[:] = [str(_ROOT)] + [
    p for p in sys.path if Path(p or ".").resolve() != _ROOT / "benchmarks"
]

import numpy as np
import pandas as pd

from infra.lake import read_source
from models.config import RunConfig, ShopConfig
from models.data.columns import Columns
from models.data.ids import IdMap
from models.data.ingest import validate_tables
from models.data.shop import generate
from models.evaluation import sessions as protocol
from models.recommenders.sessions import SessionModel

C = Columns
ONLINE_RETAIL = _ROOT.parent / "shared" / "data" / "online-retail" / "online_retail.csv.gz"


def load(shop: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    """A shop's accepted events and items."""
    if shop == "default":
        generated = generate(ShopConfig())
        return generated.events, generated.items
    tables = validate_tables(read_source(str(ONLINE_RETAIL), "online-retail"))
    return tables.events.accepted, tables.items.accepted


def windows(events: pd.DataFrame, items: IdMap, days: int, sessions: int):
    """(validation, test) windows: the training window's last ``days`` against what came
    before them; the holdout's last ``days`` against the whole training window."""
    cutoff = events[C.timestamp].max() - pd.Timedelta(days=days)
    train = events[events[C.timestamp] < cutoff]
    inner = cutoff - pd.Timedelta(days=days)
    early, late = train[train[C.timestamp] < inner], train[train[C.timestamp] >= inner]
    validation = protocol.window(early, late, items, max_sessions=sessions)
    test = protocol.window(train, events[events[C.timestamp] >= cutoff], items, sessions)
    return validation, test


def knn_variant(w: protocol.Window, categories: np.ndarray, decay: float) -> bool:
    """Whether session-kNN (with this prefix decay) does better on ``w`` without the
    prefix's own items."""
    model = SessionModel.fit(w.train, categories)
    hit = {
        drop: protocol.evaluate(model.scorer("knn", drop), w.test, w.cases, decay).mean("hit_rate")
        for drop in (False, True)
    }
    return hit[True] > hit[False]


def run(shop: str, args: argparse.Namespace) -> None:
    started = time.perf_counter()
    events, items_table = load(shop)
    items = IdMap(items_table[C.item])
    categories = pd.factorize(items_table.set_index(C.item).reindex(items.ids)[C.category])[0]
    days = RunConfig().features.holdout_days
    validation, test = windows(events, items, days, args.sessions)
    print(
        f"\n{shop}: {len(test.train):,} training sessions; holdout {len(test.test):,} sessions, "
        f"{len(test.cases):,} next-item cases; validation {len(validation.test):,} sessions",
        flush=True,
    )
    weights, table = protocol.choose_blend(validation, categories)
    best = table.sort_values("hit_rate", ascending=False).head(3)
    print("Blend chosen on the validation window (its three best points):")
    print(best.to_string(index=False, float_format=lambda v: f"{v:.4f}"))
    exclude = {decay: knn_variant(validation, categories, decay) for decay in (0.0, 1.0)}
    model = SessionModel.fit(test.train, categories)
    scored = {
        "popularity": protocol.evaluate(model.scorer("popularity"), test.test, test.cases, 0.0)
    }
    for name, decay in (("SKNN", 0.0), ("V-SKNN", 1.0)):
        scorer = model.scorer("knn", exclude[decay])
        scored[name] = protocol.evaluate(scorer, test.test, test.cases, decay)
    blend = protocol.evaluate(model.blend(weights), test.test, test.cases, protocol.DECAY)
    scored["cartlift session blend"] = blend
    for name, s in scored.items():
        dropped = name in ("SKNN", "V-SKNN") and exclude[0.0 if name == "SKNN" else 1.0]
        note = " (own items excluded)" if dropped else ""
        print(
            f"  {name:24s} hit rate@10 {s.mean('hit_rate'):.4f}  MRR@10 {s.mean('mrr'):.4f}{note}"
        )
    rivals = {n: s for n, s in scored.items() if n != "cartlift session blend"}
    strongest = max(rivals, key=lambda n: rivals[n].mean("hit_rate"))
    for metric in ("hit_rate", "mrr"):
        d = protocol.paired(blend, rivals[strongest], metric)
        target = " (target >= 1.2x)" if metric == "hit_rate" else ""
        verdict = (" PASS" if d.ratio >= 1.2 else " FAIL") if target else ""
        print(
            f"  {metric} vs the strongest, {strongest}: {d.ratio:.2f}x{target}, difference "
            f"{d.difference:+.4f} [{d.low:+.4f}, {d.high:+.4f}]{verdict}"
        )
    print(f"  ({time.perf_counter() - started:.0f} s; weights {weights})", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shops", nargs="+", default=["default", "online-retail"])
    parser.add_argument("--sessions", type=int, default=5000)
    args = parser.parse_args()
    np.seterr(all="ignore")
    for shop in args.shops:
        run(shop, args)


if __name__ == "__main__":
    main()
