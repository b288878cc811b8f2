import math

import pytest
import torch

from tests.tracker.train_helpers import tiny_config
from mimtrack.tracker.model import build_model
from mimtrack.tracker.train.optim import build_optimizer, build_scheduler, ce_keep_rate, keep_rate_for_epoch, param_groups


def test_backbone_parameters_get_a_tenth_of_the_learning_rate_and_all_get_weight_decay():
    cfg = tiny_config(lr=4e-4, backbone_lr_mult=0.1, weight_decay=1e-4)
    model = build_model(cfg)
    opt = build_optimizer(model, cfg.train)
    assert isinstance(opt, torch.optim.AdamW)
    head, backbone = opt.param_groups
    assert head["lr"] == pytest.approx(4e-4) and backbone["lr"] == pytest.approx(4e-5)
    assert head["weight_decay"] == backbone["weight_decay"] == pytest.approx(1e-4)
    names = {id(p): n for n, p in model.named_parameters()}
    assert all("backbone" in names[id(p)] for p in backbone["params"])
    assert all("backbone" not in names[id(p)] for p in head["params"])
    assert len(head["params"]) + len(backbone["params"]) == len(list(model.parameters()))


def test_frozen_parameters_are_left_out():
    model = build_model(tiny_config())
    model.backbone.cls_token.requires_grad_(False)
    groups = param_groups(model, 1.0, 0.1)
    assert all(p is not model.backbone.cls_token for g in groups for p in g["params"])


def test_step_lr_drops_tenfold_at_the_drop_epoch():
    cfg = tiny_config(lr=4e-4, lr_drop_epoch=3)
    opt = build_optimizer(build_model(cfg), cfg.train)
    sched = build_scheduler(opt, cfg.train)
    lrs = []
    for _ in range(5):
        lrs.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    assert lrs == pytest.approx([4e-4, 4e-4, 4e-4, 4e-5, 4e-5])


def test_ce_keep_rate_schedule():
    # OSTrack 300-epoch run: 1.0 before 20, cosine to 0.7 over 80 epochs, then 0.7
    assert ce_keep_rate(0, 20, 80, 0.7) == 1.0
    assert ce_keep_rate(19, 20, 80, 0.7) == 1.0
    assert ce_keep_rate(20, 20, 80, 0.7) == pytest.approx(1.0)
    assert ce_keep_rate(60, 20, 80, 0.7) == pytest.approx(0.85)               # half-way: cos(pi/2) = 0
    assert ce_keep_rate(40, 20, 80, 0.7) == pytest.approx(0.7 + 0.3 * (math.cos(math.pi / 4) + 1) / 2)
    assert ce_keep_rate(100, 20, 80, 0.7) == pytest.approx(0.7)
    assert ce_keep_rate(250, 20, 80, 0.7) == pytest.approx(0.7)


def test_keep_rate_is_none_without_candidate_elimination():
    cfg = tiny_config()
    assert keep_rate_for_epoch(cfg, 0) == 1.0 and keep_rate_for_epoch(cfg, 5) == pytest.approx(0.75)
    cfg.model.ce.locations, cfg.model.ce.keep_ratio = [], []
    assert keep_rate_for_epoch(cfg, 5) is None
