"""Sessions, the next-item protocol and the session recommenders on hand-made sessions."""

from __future__ import annotations

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
    p = protocol.prefixes(s, cases, decay=1.0).toarray()
    assert p[0].tolist() == [1, 0, 0, 0, 0]
    assert p[1].tolist() == [0.5, 1, 0, 0, 0]  # step 1 of 2 weighs 1/2, the last 1


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
        model.component("colour", protocol.prefixes(test, cases))


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
