from models.evaluation.gate import decide


def test_first_model_needs_to_beat_popularity():
    assert decide(0.10, 0.05, None, 0.01).promote
    assert not decide(0.05, 0.05, None, 0.01).promote


def test_tie_with_champion_keeps_champion():
    decision = decide(0.10, 0.05, 0.10, 0.01)
    assert not decision.promote
    assert "champion" in decision.reason


def test_margin_is_relative():
    assert decide(0.1011, 0.05, 0.10, 0.01).promote
    assert not decide(0.1009, 0.05, 0.10, 0.01).promote


def test_champion_from_another_dataset_is_not_compared():
    from models.evaluation.gate import gate

    scores = {"candidate": {"ndcg_at_10": 0.2}, "popularity": {"ndcg_at_10": 0.1}}
    decision = gate(scores, "online-retail", "default-shop", "3", 0.01)
    assert not decision.promote and "promote --version" in decision.reason
    assert gate(scores, "online-retail", None, None, 0.01).promote
    scores["champion"] = {"ndcg_at_10": 0.25}
    assert not gate(scores, "online-retail", "online-retail", "3", 0.01).promote
