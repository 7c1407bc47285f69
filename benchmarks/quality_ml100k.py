"""Recommendation quality on MovieLens 100K under Microsoft Recommenders' public protocol.

Per-user stratified random split 75/25 (seed 42), every rating a positive, training items
never recommended, k = 10; users as the sample for 95% bootstrap intervals. Compares the
baselines of :mod:`models.recommenders.baselines` with LightFM pure collaborative filtering and the
hybrid (user age band, gender and occupation; movie genres), all through
:mod:`models.evaluation.protocol`. The reference table lists popularity 0.225 / 0.253 (P@10 /
NDCG@10), BPR (Cornac) 0.389 / 0.445, BiVAE 0.408 / 0.469.

    uv run python benchmarks/quality_ml100k.py [--data ../shared/data/ml-100k]
        [--components 64] [--epochs 30] [--learning-rate 0.05] [--feature-weight 1.0]
        [--tune 40]

``--tune N`` adds the tuned hybrid: N trials of the ``tune`` flow's search space and
sampler (:mod:`models.evaluation.tuning`, Optuna TPE, seeded) with early stopping, scored on a
validation split carved from the *training* ratings the same way (per user, 75/25, its
own seed); the best configuration is retrained on all training ratings and only then
meets the test split, once.

MovieLens is for research use only: it is read here, never shipped in the product.
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
import scipy.sparse as sp

from models.config import TrainConfig
from models.evaluation.protocol import Protocol, Scorer, Task, evaluate, per_user, rank, task
from models.evaluation.tuning import early_stopping, suggest
from models.recommenders.base import Interactions
from models.recommenders.baselines import ImplicitALS, ItemKNN, Popularity
from models.recommenders.hybrid import new_lightfm

AGE_BANDS = [0, 18, 25, 35, 45, 55, 200]


def load(data: Path) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    ratings = pd.read_csv(data / "u.data", sep="\t", names=["user", "item", "rating", "ts"])
    users = pd.read_csv(data / "u.user", sep="|", names=["user", "age", "gender", "job", "zip"])
    items = pd.read_csv(data / "u.item", sep="|", header=None, encoding="latin-1")
    return ratings, users, items


def stratified_split(ratings: pd.DataFrame, ratio: float, seed: int):
    """Each user's ratings shuffled (seeded), the first ``ratio`` to training."""
    shuffled = ratings.sample(frac=1.0, random_state=seed).reset_index(drop=True)
    position = shuffled.groupby("user").cumcount()
    size = shuffled.groupby("user")["user"].transform("size")
    in_train = position < np.round(size * ratio)
    return shuffled[in_train], shuffled[~in_train]


def as_matrix(frame: pd.DataFrame, shape: tuple[int, int]) -> sp.csr_matrix:
    return sp.csr_matrix(
        (np.ones(len(frame), np.float32), (frame["user"], frame["item"])), shape=shape
    )


def side_features(
    users: pd.DataFrame, items: pd.DataFrame, shape: tuple[int, int], weight: float
) -> tuple[sp.csr_matrix, sp.csr_matrix]:
    """Identity plus side features (weighted), as LightFM's hybrid takes them."""
    band = pd.cut(users["age"], AGE_BANDS, labels=False).astype(str)
    tokens = pd.concat(
        [
            pd.DataFrame({"user": users["user"], "token": "age=" + band}),
            pd.DataFrame({"user": users["user"], "token": "gender=" + users["gender"]}),
            pd.DataFrame({"user": users["user"], "token": "job=" + users["job"]}),
        ]
    )
    codes, vocab = pd.factorize(tokens["token"])
    uf = sp.csr_matrix(
        (np.full(len(codes), weight, np.float32), (tokens["user"], codes)),
        shape=(shape[0], len(vocab)),
    )
    genres = items.iloc[:, 5:].to_numpy()
    rows, cols = np.nonzero(genres)
    itf = sp.csr_matrix(
        (np.full(len(rows), weight, np.float32), (items[0].to_numpy()[rows], cols)),
        shape=(shape[1], genres.shape[1]),
    )
    return (
        sp.hstack([sp.identity(shape[0], format="csr"), uf]).tocsr(),
        sp.hstack([sp.identity(shape[1], format="csr"), itf]).tocsr(),
    )


def scorer_of(model, uf=None, itf=None) -> Scorer:
    _, ue = model.get_user_representations(uf)
    ib, ie = model.get_item_representations(itf)
    return lambda rows: ue[rows] @ ie.T + ib


def lightfm_scores(train: sp.csr_matrix, cfg: TrainConfig, uf=None, itf=None) -> Scorer:
    model = new_lightfm(cfg)
    model.fit(
        train, user_features=uf, item_features=itf, epochs=cfg.epochs, num_threads=cfg.num_threads
    )
    return scorer_of(model, uf, itf)


def ndcg(scorer: Scorer, t: Task, k: int = 10) -> float:
    return float(per_user(rank(scorer, t, k), t, (k,))[f"ndcg_at_{k}"].mean())


def as_train_config(params: dict, epochs: int) -> TrainConfig:
    """The ``train.*`` part of a point of the search space."""
    values = {k.split(".", 1)[1]: v for k, v in params.items() if k.startswith("train.")}
    return TrainConfig(**values, epochs=epochs)


def trial(params: dict, data: tuple, max_epochs: int) -> tuple[float, int]:
    """(best validation NDCG@10, its epoch) of one point of the search space."""
    fit_m, val, users, items, shape = data
    uf, itf = side_features(users, items, shape, params["features.user_feature_weight"])
    model = new_lightfm(as_train_config(params, max_epochs))
    result = early_stopping(
        lambda: model.fit_partial(fit_m, user_features=uf, item_features=itf, epochs=1),
        lambda: ndcg(scorer_of(model, uf, itf), val),
        max_epochs,
    )
    return result.score, result.best_epoch


def tune(train_df, users, items, shape, trials: int, max_epochs: int, seed: int = 42):
    """Best (params, epochs, score) on a validation split of the training ratings only."""
    import optuna

    fit_df, val_df = stratified_split(train_df, 0.75, seed=seed + 1)
    fit_m = as_matrix(fit_df, shape)
    data = (fit_m, task(as_matrix(val_df, shape), fit_m), users, items, shape)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    sampler = optuna.samplers.TPESampler(seed=seed)
    study = optuna.create_study(direction="maximize", sampler=sampler)
    epochs: dict[int, int] = {}
    for number in range(trials):
        point = study.ask()
        params = suggest(point)
        score, epochs[number] = trial(params, data, max_epochs)
        study.tell(point, score)
        shown = ", ".join(
            f"{k.split('.')[-1]}={v:.3g}" if isinstance(v, float) else f"{k.split('.')[-1]}={v}"
            for k, v in params.items()
        )
        print(f"  trial {number:2d}: NDCG@10 {score:.4f} at epoch {epochs[number]} ({shown})")
    best = study.best_trial
    return suggest(optuna.trial.FixedTrial(best.params)), epochs[best.number], best.value


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=_ROOT.parent / "shared/data/ml-100k")
    parser.add_argument("--components", type=int, default=64)
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--learning-rate", type=float, default=0.05)
    parser.add_argument("--alpha", type=float, default=0.0)
    parser.add_argument("--feature-weight", type=float, default=1.0)
    parser.add_argument("--tune", type=int, default=0, help="trials for the tuned hybrid")
    parser.add_argument("--max-epochs", type=int, default=60)
    args = parser.parse_args()

    ratings, users, items = load(args.data)
    shape = (int(ratings["user"].max()) + 1, int(ratings["item"].max()) + 1)
    train_df, test_df = stratified_split(ratings, 0.75, seed=42)
    train, test = as_matrix(train_df, shape), as_matrix(test_df, shape)
    t = task(test, train)
    print(f"ML-100K: {train.nnz:,} training and {test.nnz:,} test ratings, {len(t.users)} users")
    data = Interactions(matrix=train, item_category=np.zeros(shape[1], int))
    cfg = TrainConfig(
        no_components=args.components,
        learning_rate=args.learning_rate,
        epochs=args.epochs,
        item_alpha=args.alpha,
        user_alpha=args.alpha,
        max_sampled=10,
    )
    uf, itf = side_features(users, items, shape, args.feature_weight)
    scorers = {
        "popularity": Popularity().fit(data).scores,
        "item-kNN": ItemKNN(neighbours=100).fit(data).scores,
        "implicit ALS": ImplicitALS(factors=64, alpha=10.0, regularization=0.05).fit(data).scores,
        "LightFM CF": lightfm_scores(train, cfg),
        "LightFM hybrid": lightfm_scores(train, cfg, uf, itf),
    }
    if args.tune:
        print(f"Tuning on a validation split of the training ratings, {args.tune} trials")
        params, epochs, value = tune(train_df, users, items, shape, args.tune, args.max_epochs)
        tuned = as_train_config(params, epochs)
        weight = params["features.user_feature_weight"]
        print(f"Best: validation NDCG@10 {value:.4f}; {tuned}; feature weight {weight:.3g}")
        uf_t, itf_t = side_features(users, items, shape, weight)
        scorers["LightFM CF (tuned)"] = lightfm_scores(train, tuned)
        scorers["LightFM hybrid (tuned)"] = lightfm_scores(train, tuned, uf_t, itf_t)
    protocol = Protocol(ks=(10,), bootstrap=1000)
    print(f"{'model':22s} {'P@10':>22s} {'NDCG@10':>22s}")
    for name, scorer in scorers.items():
        started = time.perf_counter()
        table = evaluate(name, scorer, t, protocol).set_index(["metric"])
        p, n = table.loc["precision"], table.loc["ndcg"]
        print(
            f"{name:22s} {p['mean']:.3f} [{p['lower']:.3f}, {p['upper']:.3f}]  "
            f"{n['mean']:.3f} [{n['lower']:.3f}, {n['upper']:.3f}]  "
            f"({time.perf_counter() - started:.1f} s to score)",
            flush=True,
        )


if __name__ == "__main__":
    main()
