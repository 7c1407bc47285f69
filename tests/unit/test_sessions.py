"""Sessions, the next-item protocol and the session recommenders on hand-made sessions."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pandas as pd
import pytest

from models.data.ids import IdMap
from models.evaluation import sessions as protocol
from models.features.sessions import sessionize
from models.recommenders import sessions as rec
from models.recommenders.sessions import SessionModel, Weights

ITEMS = IdMap(["a", "b", "c", "d", "e"])
T0 = pd.Timestamp("2026-11-01 10:00")


def events(rows: list[tuple[str, str, float]]) -> pd.DataFrame:
    """(customer, item, minutes after T0) rows as lake events."""
    return pd.DataFrame(
        {
            "user_id": [r[0] for r in rows],
            "item_id": [r[1] for r in rows],
            "timestamp": [T0 + pd.Timedelta(minutes=r[2]) for r in rows],
        }
    )


def test_sessions_split_on_pauses_fold_repeats_and_drop_unknown_items():
    s = sessionize(
        events(
            [
                ("u1", "a", 0),
                ("u1", "a", 1),  # the same item again (viewed, then carted): one step
                ("u1", "zz", 2),  # unknown to the item map
                ("u1", "b", 3),
                ("u1", "c", 60),  # a pause of 57 minutes: a new session
                ("u2", "d", 0),
                ("u2", "a", 5),
            ]
        ),
        ITEMS,
    )
    assert s.lengths.tolist() == [2, 1, 2]
    assert ITEMS.ids[s.items].tolist() == ["a", "b", "c", "d", "a"]
    assert s.matrix().toarray().sum(axis=1).tolist() == [2, 1, 2]
    assert ITEMS.ids[s.take(np.array([2, 0])).items].tolist() == ["d", "a", "a", "b"]


def test_cases_ask_for_each_next_step_with_recency_weighted_prefixes():
    s = sessionize(events([("u1", i, m) for m, i in enumerate("abcd")]), ITEMS)
    cases = protocol.next_item_cases(s, max_prefix=2)
    assert cases.length.tolist() == [1, 2] and ITEMS.ids[cases.target].tolist() == ["b", "c"]
    p = protocol.prefixes(s, cases, decay=1.0)
    assert p.weights.toarray()[0].tolist() == [1, 0, 0, 0, 0]
    assert p.weights.toarray()[1].tolist() == [0.5, 1, 0, 0, 0]  # step 1 of 2 weighs 1/2
    assert ITEMS.ids[p.last].tolist() == ["a", "b"] and p.length.tolist() == [1, 2]


def test_rules_knn_and_the_blend_on_a_known_sequence():
    train = sessionize(
        events([(f"u{n}", i, m) for n in range(5) for m, i in enumerate("abc")]), ITEMS
    )
    rules = rec.transitions(train, steps=2).toarray()
    assert rules[0, 1] == 5 and rules[0, 2] == 2.5 and rules[1, 0] == 0  # a->b, a.->c
    test = sessionize(events([("v", "a", 0), ("v", "b", 1), ("v", "c", 2)]), ITEMS)
    cases = protocol.next_item_cases(test)
    model = SessionModel.fit(train, np.array([0, 0, 1, 1, 1]))
    ordered = protocol.evaluate(model.scorer("rules", True), test, cases, 1.0, k=1)
    assert ordered.mean("hit_rate") == 1.0  # the rules know b comes after a
    for name in ("knn", "ease"):  # order-blind: b and c tie after a
        got = protocol.evaluate(model.scorer(name, True), test, cases, decay=1.0, k=2)
        assert got.mean("hit_rate") == 1.0 and got.mean("mrr") == 0.75, name
    pop = protocol.evaluate(model.scorer("popularity"), test, cases, 0.0, k=1)
    assert pop.rank.tolist() == [2, 2]  # three items tie: the target counts below the others
    blend = model.blend(Weights(category=0.5))
    assert protocol.evaluate(blend, test, cases, 1.0, k=1).mean("mrr") == 1.0
    with pytest.raises(ValueError, match="no session component 'colour'"):
        model.component("colour", protocol.prefixes(test, cases).weights)


def test_the_blend_is_chosen_on_the_validation_window_and_the_comparison_is_paired():
    rows = [(f"u{n}", i, m) for n in range(20) for m, i in enumerate("abcde"[n % 2 :])]
    w = protocol.window(events(rows[:60]), events(rows[60:]), ITEMS, max_sessions=50)
    categories = np.zeros(5, np.int64)
    weights, table = protocol.choose_blend(w, categories)
    assert isinstance(weights.rules, float) and isinstance(weights.exclude_seen, bool)
    model = SessionModel.fit(w.train, categories)
    best = protocol.evaluate(model.blend(weights), w.test, w.cases, protocol.DECAY)
    assert table["hit_rate"].max() == pytest.approx(best.mean("hit_rate"))
    same = protocol.evaluate(model.scorer("popularity"), w.test, w.cases, 0.0)
    d = protocol.paired(same, same, "hit_rate")
    assert (d.difference, d.low, d.high, d.ratio) == (0.0, 0.0, 0.0, 1.0)


def test_one_request_s_scores_are_the_batch_scores():
    """The served path (one session, no sparse products) gives the protocol's scores."""
    rng = np.random.default_rng(5)
    rows = [
        (f"u{n}", "abcde"[i], m) for n in range(40) for m, i in enumerate(rng.integers(0, 5, 4))
    ]
    train = sessionize(events(rows), ITEMS)
    model = SessionModel.fit(train, np.array([0, 0, 1, 1, 2]), neighbours=500)
    for weights in (Weights(), Weights(knn=1.0, category=0.3, exclude_seen=False)):
        for recent in ([0], [3, 1], [2, 2, 4]):
            batch = model.blend(weights)(rec.prefix(np.array(recent), 5))[0]
            assert model.score_one(np.array(recent), weights) == pytest.approx(batch, abs=1e-5)


def test_the_ranker_walks_its_trees_to_scikit_learn_s_figures():
    """The complete trees the service walks give what the trees they came from give."""
    from sklearn.ensemble import HistGradientBoostingClassifier

    rng = np.random.default_rng(0)
    x = rng.random((6000, 4)).astype(np.float32)
    y = x[:, 0] + 0.5 * x[:, 1] + rng.random(6000) > 1.4
    ranker = rec.Ranker.fit(x, y, seed=3)
    trees = HistGradientBoostingClassifier(
        **rec.TREES, min_samples_leaf=rec.leaf_size(len(y)), random_state=3
    ).fit(x, y)
    assert ranker.depth > 1
    assert ranker.score(x[:500]) == pytest.approx(trees.predict_proba(x[:500])[:, 1], abs=1e-9)
    assert ranker.score(x[:6].reshape(2, 3, 4)).shape == (2, 3)


TWINS = IdMap(
    [
        f"{colour} {thing}"
        for thing in ("mug", "lamp", "rug", "vase", "clock")
        for colour in ("red", "blue")
    ]
)
TITLES = pd.DataFrame({"item_id": TWINS.ids, "title": [s.upper() for s in TWINS.ids]})


def twin_sessions(n: int, seed: int, twins: bool) -> pd.DataFrame:
    """Sessions of two items: a random one, then its twin (the other colour of the same
    thing) when ``twins``, else another random one."""
    rng = np.random.default_rng(seed)
    rows = []
    for s in range(n):
        first = int(rng.integers(0, 10))
        second = first ^ 1 if twins else int(rng.integers(0, 10))
        rows += [
            (f"u{seed}-{s}", TWINS.ids[first], s * 60),
            (f"u{seed}-{s}", TWINS.ids[second], s * 60 + 1),
        ]
    return events(rows)


def test_the_ranker_is_kept_when_it_finds_what_the_blend_cannot_and_answers_the_same_served():
    """Past sessions pair items at random; the validation window's visitors go from an item
    to its twin, which only the titles tell. The ranker learns it (on half the window's
    sessions, checked on the other half), and one request scores as the batch does."""
    from models.features.build import title_similarity

    title = title_similarity(TITLES, TWINS.ids, 100)
    categories = np.zeros(10, np.int64)
    before = twin_sessions(300, 0, twins=False)
    after = twin_sessions(200, 1, twins=True)
    after["timestamp"] += pd.Timedelta(days=60)
    w = protocol.window(before, after, TWINS)
    # as many neighbours as sessions: the batch and the served kNN then see the same ones
    model = SessionModel.fit(w.train, categories, title, neighbours=500)
    weights, _ = protocol.choose_blend(w, categories, model=model)
    taught = protocol.learn_ranker(w, model, weights, k=1)
    assert taught.ranker is not None
    assert taught.ranker_hit_rate == 1.0 and taught.blend_hit_rate < 0.5
    served = replace(model, ranker=taught.ranker)
    for recent in ([0], [3, 8], [5, 5, 1]):
        batch = served.blend(weights)(rec.prefix(np.array(recent), 10))[0]
        one = served.score_one(np.array(recent), weights)
        assert one == pytest.approx(batch, abs=1e-5)
        if len(recent) == 1:  # what the window taught: one item, then its twin
            assert int(np.argmax(one)) == recent[0] ^ 1
