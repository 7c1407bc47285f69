"""What a visitor does next (issue 18's offline protocol): session recommenders on the
default shop and on UCI Online Retail (an invoice's lines in order as the session).

The holdout is the last ``features.holdout_days`` (30) days, as in the quality report.
:func:`models.evaluation.sessions.compare` (what the quality report shows): every choice
is made on a validation window carved from the training window (its last 30 days against
what came before): the blend's weights and, for each session-kNN baseline, whether the
prefix's own items may come back (so each baseline is its strongest version). Then
everything is refit on the whole training window and scored on the holdout's sessions (at
most 5,000, sampled with a seed), visitors treated as anonymous. Printed per shop: hit
rate@10 and MRR@10 of popularity, SKNN, V-SKNN and cartlift's session blend, and the
blend against the strongest of them with a paired 95% interval.

    uv run python benchmarks/sessions.py [--shops default online-retail] [--sessions 5000]
                                         [--no-ranker]
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
import yaml

from infra.lake import read_source
from models.config import RunConfig, ShopConfig
from models.data.columns import Columns
from models.data.ids import IdMap
from models.data.ingest import validate_tables
from models.data.shop import generate
from models.evaluation import sessions as protocol
from models.evaluation.tasks import repeat_share
from models.evaluation.weighing import weigh
from models.features.build import FeatureSet, title_similarity
from models.ranking.bundle import build_bundle
from models.ranking.engine import Engine
from models.recommenders.hybrid import HybridModel

C = Columns
ONLINE_RETAIL = _ROOT.parent / "shared" / "data" / "online-retail" / "online_retail.csv.gz"


def run_config(path: Path | None) -> RunConfig:
    """The run config of ``--config`` (e.g. a tuned one), else the defaults."""
    if path is None:
        return RunConfig()
    return RunConfig.model_validate(yaml.safe_load(path.read_text()))


def versus(
    name: str, ratio: float, target: float | None, low: float, mid: float, high: float
) -> str:
    """One comparison line: the ratio, against the target when there is one, and the
    paired interval of the difference."""
    aim = f" (target >= {target:g}x)" if target is not None else ""
    verdict = (" PASS" if ratio >= target else " FAIL") if target is not None else ""
    return f"  {name}: {ratio:.2f}x{aim}, difference {mid:+.4f} [{low:+.4f}, {high:+.4f}]{verdict}"


def say(message: str, *args: object) -> None:
    """A pipeline's log line (%-format and arguments) printed, so its choices show."""
    print("  validation: " + message % args, flush=True)


def served_engine(fs: FeatureSet, config: RunConfig) -> Engine:
    """The answer the pipeline would serve for ``fs``: every weight chosen on the
    validation window by the pipeline's own :func:`weigh` (its choices printed), the
    hybrid trained on the whole training window, built as the service builds it."""
    aim = config.evaluate.resolve(repeat_share(fs.split.train))
    weighed = weigh(fs, config, aim, say)
    model = HybridModel.fit(fs, config.train)
    served = (weighed.mixes, weighed.neighbours)
    return Engine(build_bundle(model, fs, config.features, weighed.ranking, {}, served, aim))


def load(shop: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    """A shop's accepted events and items."""
    if shop == "default":
        generated = generate(ShopConfig())
        return generated.events, generated.items
    tables = validate_tables(read_source(str(ONLINE_RETAIL), "online-retail"))
    return tables.events.accepted, tables.items.accepted


def run(shop: str, args: argparse.Namespace) -> None:
    started = time.perf_counter()
    events, items_table = load(shop)
    items = IdMap(items_table[C.item])
    categories = pd.factorize(items_table.set_index(C.item).reindex(items.ids)[C.category])[0]
    config = RunConfig()
    days = config.features.holdout_days
    cutoff = events[C.timestamp].max() - pd.Timedelta(days=days)
    before = events[C.timestamp] < cutoff
    title = title_similarity(items_table, items.ids, config.features.title_words)
    got = protocol.compare(
        events[before],
        events[~before],
        items,
        categories,
        days,
        args.sessions,
        title=title,
        ranker=config.ranking.session_ranker and not args.no_ranker,
    )
    if got is None:
        print(f"\n{shop}: too few sessions for the protocol")
        return
    print(f"\n{shop}: {got.sessions:,} holdout sessions, {got.cases:,} next-item cases")
    for row in got.table.itertuples():
        print(
            f"  {row.model:24s} hit rate@{got.k} {row.hit_rate:.4f}  MRR@{got.k} {row.mrr:.4f}"
            f"  ({row.note})"
        )
    taught = got.taught
    if np.isfinite(taught.blend_hit_rate):
        print(
            f"  ranker {'kept' if taught.ranker else 'dropped'}: on validation sessions it"
            f" did not learn from, hit rate@{got.k} {taught.ranker_hit_rate:.4f} against"
            f" the blend's {taught.blend_hit_rate:.4f}"
        )
    for metric, d in got.against.items():
        target = 1.2 if metric == "hit_rate" else None
        name = f"{metric} vs the strongest, {got.strongest}"
        print(versus(name, d.ratio, target, d.low, d.difference, d.high))
    print(f"  ({time.perf_counter() - started:.0f} s)", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shops", nargs="+", default=["default", "online-retail"])
    parser.add_argument("--sessions", type=int, default=5000)
    parser.add_argument(
        "--no-ranker", action="store_true", help="the blend alone (ranking.session_ranker off)"
    )
    args = parser.parse_args()
    np.seterr(all="ignore")
    for shop in args.shops:
        run(shop, args)


if __name__ == "__main__":
    main()
