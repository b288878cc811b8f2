"""Optimisation as OSTrack (``lib/train/base_functions.py: get_optimizer_scheduler``): AdamW with a x0.1 backbone
group, StepLR, the CE keep-rate schedule."""

import math

import torch

from mimtrack.errors import UserError


def param_groups(model, lr, backbone_lr_mult):
    """Two groups: parameters without "backbone" in their name at ``lr``, the backbone's at ``lr * mult``.

    Weight decay applies to all of them (OSTrack has no no-decay group). Frozen parameters are left out.
    """
    model = getattr(model, "module", model)
    head, backbone = [], []
    for name, p in model.named_parameters():
        if p.requires_grad:
            (backbone if "backbone" in name else head).append(p)
    return [{"params": head, "lr": lr, "name": "head"},
            {"params": backbone, "lr": lr * backbone_lr_mult, "name": "backbone"}]


def build_optimizer(model, train_cfg):
    """AdamW(lr, weight_decay) over :func:`param_groups`."""
    if train_cfg.lr <= 0:
        raise UserError(f"config train.lr={train_cfg.lr}: must be > 0")
    groups = param_groups(model, train_cfg.lr, train_cfg.backbone_lr_mult)
    # foreach: one multi-tensor kernel per update step instead of a loop over ~200 parameters (torch picks it by
    # itself on CUDA only; on the CPU it saves most of the optimizer's time)
    return torch.optim.AdamW(groups, lr=train_cfg.lr, weight_decay=train_cfg.weight_decay, foreach=True)


def build_scheduler(optimizer, train_cfg):
    """StepLR stepped once per epoch: every learning rate x0.1 from epoch ``lr_drop_epoch`` on."""
    if train_cfg.lr_drop_epoch <= 0:
        raise UserError(f"config train.lr_drop_epoch={train_cfg.lr_drop_epoch}: must be > 0")
    return torch.optim.lr_scheduler.StepLR(optimizer, step_size=train_cfg.lr_drop_epoch, gamma=0.1)


def ce_keep_rate(epoch, start_epoch, warm_epochs, keep_ratio):
    """Candidate-elimination keep rate for (0-based) ``epoch`` (OSTrack's adjust_keep_rate, per epoch).

    1.0 (no elimination) before ``start_epoch``; a cosine from 1.0 down to ``keep_ratio`` over ``warm_epochs``;
    ``keep_ratio`` from ``start_epoch + warm_epochs`` on.
    """
    if epoch < start_epoch:
        return 1.0
    if warm_epochs <= 0 or epoch >= start_epoch + warm_epochs:
        return keep_ratio
    progress = (epoch - start_epoch) / warm_epochs
    return keep_ratio + (1.0 - keep_ratio) * 0.5 * (math.cos(math.pi * progress) + 1.0)


def model_keep_ratio(cfg):
    """The keep ratio the schedule anneals to (OSTrack: CE_KEEP_RATIO[0]); None when the model has no CE."""
    ce = cfg.model.ce
    return ce.keep_ratio[0] if ce.locations else None


def keep_rate_for_epoch(cfg, epoch):
    """``ce_keep_rate`` argument of the model at ``epoch``: None without CE, else the schedule's value."""
    ratio = model_keep_ratio(cfg)
    if ratio is None:
        return None
    return ce_keep_rate(epoch, cfg.train.ce_start_epoch, cfg.train.ce_warm_epoch, ratio)
