from models.gate import decide


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
