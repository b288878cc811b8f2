"""The rules every training loop shares (mimtrack.loop): a non-finite loss skips its step, a streak of them stops
the run with a checkpoint; the ranks agree before they branch. Tracker training has its own tests
(tests/tracker/test_train_trainer.py); here the rules themselves and the pre-training loop that follows them."""

import pytest
import torch

from mimtrack import loop
from mimtrack.errors import UserError
from tests.pretrain.test_engine import make_images, small_config


def test_a_streak_of_non_finite_steps_stops_the_run_after_saving(capsys):
    saved = []
    steps = loop.NonFiniteSteps(3, hint="lower the rate")
    steps.skipped("step 1", float("nan"))
    steps.skipped("step 2", float("inf"))
    steps.ok()                                   # an applied step ends the streak
    steps.skipped("step 4", float("nan"))
    steps.skipped("step 5", float("nan"))
    with pytest.raises(UserError, match=r"training stopped at step 6: 3 consecutive steps gave a non-finite loss "
                                        r"\(train.max_nan_steps\); lower the rate; state saved to /x/last.pth"):
        steps.skipped("step 6", float("nan"), save=lambda: saved.append(1) or "/x/last.pth")
    assert saved == [1] and steps.total == 5
    assert capsys.readouterr().err.count("non-finite loss or gradient") == 5
    with pytest.raises(UserError, match="train.max_nan_steps=0"):
        loop.NonFiniteSteps(0)


def test_one_process_agrees_with_itself():
    assert loop.agree([True, False], None) == [True, False]
    assert loop.agree(torch.tensor([False, True]), None) == [False, True]


def _nan_at(method, calls):
    """Make the pre-training method's loss NaN on the listed (1-based) forward calls."""
    forward, count = method.forward, {"n": 0}

    def patched(*args, **kwargs):
        loss, parts = forward(*args, **kwargs)
        count["n"] += 1
        return (loss * float("nan"), parts) if count["n"] in calls else (loss, parts)
    method.forward = patched
    return method


def test_pretraining_skips_a_non_finite_step_and_stops_on_a_streak(tmp_path, monkeypatch, capsys):
    from mimtrack.pretrain import engine

    data = make_images(tmp_path / "data")
    build = engine.build_method
    monkeypatch.setattr(engine, "build_method", lambda cfg, teacher=None: _nan_at(build(cfg, teacher), {2}))
    history = engine.train(small_config(extra=["train.epochs=1"]), str(data), str(tmp_path / "a"))
    assert len(history) == 1 and "step skipped (1 in a row)" in capsys.readouterr().err

    monkeypatch.setattr(engine, "build_method", lambda cfg, teacher=None: _nan_at(build(cfg, teacher), {2, 3}))
    with pytest.raises(UserError, match="2 consecutive steps gave a non-finite loss"):
        engine.train(small_config(extra=["train.epochs=1", "train.max_nan_steps=2"]), str(data), str(tmp_path / "b"))
    assert (tmp_path / "b" / "last.pth").is_file()   # the stop left a state to resume from
