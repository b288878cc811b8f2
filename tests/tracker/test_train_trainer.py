import json
import os
import signal

import pytest
import torch

from mimtrack import checkpoints
from mimtrack.errors import Stopped, UserError
from tests.tracker.train_helpers import fake_loader_factory, tiny_config
from mimtrack.tracker.checkpoints import load_tracker_weights
from mimtrack.tracker.model import build_model
from mimtrack.tracker.train.trainer import Trainer


def _trainer(cfg, out, resume=False, on_step=None, samples=16):
    return Trainer(cfg, out, fake_loader_factory(cfg, samples=samples), resume=resume, on_step=on_step, progress=False)


def _assert_same_state(a, b):
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), key


def test_killed_mid_epoch_and_resumed_matches_an_uninterrupted_run_bit_for_bit(tmp_path):
    cfg = tiny_config(epochs=2, checkpoint_every=5)   # 4 steps per epoch; CE keep rate anneals in epoch 1
    _trainer(cfg, tmp_path / "straight").fit()
    straight = checkpoints.load_checkpoint(tmp_path / "straight" / "last.pth")

    def sigterm_after_3_steps(trainer):
        if trainer.global_step == 3:
            os.kill(os.getpid(), signal.SIGTERM)

    with pytest.raises(Stopped) as stop:   # a stopped run is not a finished one: the command exits 143
        _trainer(cfg, tmp_path / "killed", on_step=sigterm_after_3_steps).fit()
    assert stop.value.exit_status == 143
    stopped = checkpoints.load_checkpoint(tmp_path / "killed" / "last.pth")
    assert (stopped["epoch"], stopped["step"]) == (0, 3)
    resumed = _trainer(cfg, tmp_path / "killed", resume=True)
    assert (resumed.epoch, resumed.step) == (0, 3)
    resumed.fit()
    final = checkpoints.load_checkpoint(tmp_path / "killed" / "last.pth")
    assert (final["epoch"], final["step"], final["global_step"]) == (2, 0, 8)
    _assert_same_state(straight["net"], final["net"])
    assert straight["optimizer"]["param_groups"][0]["lr"] == final["optimizer"]["param_groups"][0]["lr"]
    assert torch.equal(straight["rng"]["torch"], final["rng"]["torch"])


def test_resume_at_an_epoch_boundary_matches_too(tmp_path):
    cfg = tiny_config(epochs=2, checkpoint_every=1)
    _trainer(cfg, tmp_path / "a").fit()
    short = tiny_config(epochs=1, checkpoint_every=1)
    _trainer(short, tmp_path / "b").fit()
    _trainer(cfg, tmp_path / "b", resume=True).fit()
    _assert_same_state(checkpoints.load_checkpoint(tmp_path / "a" / "last.pth")["net"],
                       checkpoints.load_checkpoint(tmp_path / "b" / "last.pth")["net"])
    assert sorted(os.listdir(tmp_path / "b")) == ["checkpoint_e0001.pth", "checkpoint_e0002.pth", "config.yaml",
                                                   "last.pth", "metrics.jsonl"]


def test_checkpoint_holds_the_model_issue_format_and_loads_as_tracker_weights(tmp_path):
    cfg = tiny_config(epochs=1)
    last = _trainer(cfg, tmp_path).fit()
    ckpt = checkpoints.load_checkpoint(last)
    assert {"net", "epoch", "optimizer", "scheduler", "scaler", "step", "rng", "config"} <= set(ckpt)
    model = build_model(cfg)
    extra = load_tracker_weights(model, last)
    assert extra["epoch"] == 1
    _assert_same_state(model.state_dict(), ckpt["net"])
    records = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    train = [r for r in records if r["phase"] == "train"]
    assert len(train) == 1 and {"loss", "focal", "giou", "l1", "iou", "lr", "samples_per_s", "skipped"} <= set(train[0])
    from mimtrack.tracker.config import load_tracker_config

    assert load_tracker_config(str(tmp_path / "config.yaml")).model == cfg.model  # the resolved config reloads


def test_training_reduces_the_loss_on_the_fake_task(tmp_path):
    cfg = tiny_config(epochs=6, lr=2e-3, checkpoint_every=10, lr_drop_epoch=100, ce_start_epoch=100)
    _trainer(cfg, tmp_path, samples=32).fit()
    losses = [json.loads(line)["loss"] for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert losses[-1] < 0.8 * losses[0]


def _nan_after(trainer_steps):
    """Patch the criterion so that the listed (global) step numbers produce a NaN loss."""
    def wrap(trainer):
        original = trainer.criterion
        calls = {"n": 0}

        def criterion(outputs, box, heatmap, present=None):
            total, stats = original(outputs, box, heatmap, present)
            calls["n"] += 1
            if calls["n"] in trainer_steps:
                total = total * float("nan")
                stats["loss"] = total.detach()
            return total, stats
        trainer.criterion = criterion
        return trainer
    return wrap


def test_nan_loss_skips_the_step_without_touching_the_weights(tmp_path, capsys):
    cfg = tiny_config(epochs=1)
    trainer = _nan_after({2})(_trainer(cfg, tmp_path))
    seen = []
    trainer.on_step = lambda t: seen.append({k: v.clone() for k, v in t.model.state_dict().items()})
    trainer.fit()
    _assert_same_state(seen[0], seen[1])            # step 2 was skipped
    assert not torch.equal(seen[1]["box_head.conv5_ctr.weight"], seen[2]["box_head.conv5_ctr.weight"])
    assert "non-finite loss" in capsys.readouterr().err
    records = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert [r["phase"] for r in records] == ["nan", "train"] and records[1]["nan_steps"] == 1


def test_too_many_consecutive_nans_stop_with_a_message_and_a_checkpoint(tmp_path):
    cfg = tiny_config(epochs=1, max_nan_steps=2)
    trainer = _nan_after({2, 3})(_trainer(cfg, tmp_path))
    with pytest.raises(UserError, match="2 consecutive steps gave a non-finite loss"):
        trainer.fit()
    ckpt = checkpoints.load_checkpoint(tmp_path / "last.pth")
    assert (ckpt["epoch"], ckpt["step"]) == (0, 3)


def test_existing_run_needs_resume_and_amp_needs_cuda(tmp_path):
    cfg = tiny_config(epochs=1)
    _trainer(cfg, tmp_path).fit()
    with pytest.raises(UserError, match="already holds a run"):
        _trainer(cfg, tmp_path)
    with pytest.raises(UserError, match="train.amp=bf16: mixed precision needs --device cuda"):
        _trainer(tiny_config(amp="bf16"), tmp_path / "other")
