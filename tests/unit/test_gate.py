from models.evaluation.gate import decide


def test_first_model_needs_to_beat_the_strongest_baseline_or_the_baseline_is_served():
    first = decide(0.10, 0.05, None, 0.01)
    assert first.promote and first.baseline is None
    weak = decide(0.05, 0.05, None, 0.01, strongest_name="personal frequency")
    assert weak.promote and weak.baseline == "personal frequency"
    assert "personal frequency is served" in weak.reason


def test_below_the_baseline_the_champion_stays_unless_it_is_below_it_too():
    kept = decide(0.05, 0.06, 0.07, 0.01, strongest_name="EASE")
    assert not kept.promote and kept.baseline is None and "champion (0.0700) stays" in kept.reason
    replaced = decide(0.05, 0.06, 0.055, 0.01, strongest_name="EASE")
    assert replaced.promote and replaced.baseline == "EASE"


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


def test_the_bar_is_the_strongest_of_the_baselines():
    from models.evaluation.gate import gate

    scores = {
        "candidate": {"ndcg_at_10": 0.20},
        "popularity": {"ndcg_at_10": 0.10},
        "personal frequency": {"ndcg_at_10": 0.21},
        "EASE": {"ndcg_at_10": 0.15},
    }
    names = ("popularity", "personal frequency", "EASE", "not scored")
    decision = gate(scores, "shop", None, None, 0.01, baselines=names)
    assert decision.baseline == "personal frequency" and "0.2100" in decision.reason


def test_a_champion_serving_a_baseline_sets_the_bar_it_served():
    from models.evaluation.gate import gate

    scores = {"candidate": {"ndcg_at_10": 0.10}, "EASE": {"ndcg_at_10": 0.12}}
    again = gate(scores, "shop", "shop", "4", 0.01, baselines=("EASE",), champion_baseline="EASE")
    assert again.promote and again.baseline == "EASE"
    assert "the champion (version 4) serves the baseline EASE" in again.reason
    scores["candidate"]["ndcg_at_10"] = 0.2
    beaten = gate(scores, "shop", "shop", "4", 0.01, baselines=("EASE",), champion_baseline="EASE")
    assert beaten.promote and beaten.baseline is None


def test_the_gate_names_unknown_baselines():
    import pytest

    from models.recommenders.baselines import SIMPLE_BASELINES, simple_baselines

    assert [m.name for m in simple_baselines(100.0)] == list(SIMPLE_BASELINES)
    assert [m.name for m in simple_baselines(100.0, ("EASE",))] == ["popularity", "EASE"]
    with pytest.raises(ValueError, match="unknown baselines \\['ALS'\\]; known: popularity"):
        simple_baselines(100.0, ("ALS",))
