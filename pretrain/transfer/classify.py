"""Image classification on top of a (pre-trained) ViT: the model, the loop and top-1/top-5 evaluation.

Shared by ``mimtrack finetune`` (every weight trains, MAE-Lite's recipe: AdamW, layer-wise lr decay, mixup,
RandAugment, EMA optional) and ``mimtrack linprobe`` (frozen encoder, BatchNorm + linear head, LARS).
One process, or one per GPU under ``torchrun`` (DDP through ``mimtrack.distributed``).
"""

import json
import os
import time

import torch
from torch import nn

from mimtrack import distributed as dist
from mimtrack import checkpoints, stopping
from mimtrack.cli import add_training_arguments, training_overrides
from mimtrack.config import to_dict
from mimtrack.errors import UserError
from mimtrack.fileio import write_text_atomic
from mimtrack.loop import NonFiniteSteps, optimise, skip_batches, step_decision
from mimtrack.pretrain.checkpoints import load_pretrained_backbone
from mimtrack.pretrain.transfer.config import load_classify_config
from mimtrack.pretrain.transfer.data import ImageListDataset, build_transforms, load_image_folder_splits
from mimtrack.pretrain.hiera import HieraClassifier, hiera_kwargs, is_hiera
from mimtrack.pretrain.vit import create_vit


class ViTClassifier(nn.Module):
    """ViT encoder + pooling + head.

    ``global_pool="avg"``: mean of the patch tokens then ``fc_norm`` (the encoder's final norm is dropped, as MAE's
    fine-tuning model does); ``"token"``: the cls token after the final norm. ``probe=True`` puts
    BatchNorm1d(affine=False) before the linear layer (MAE's linear-probe head).
    """

    def __init__(self, backbone, num_classes, global_pool="avg", probe=False, head_init_std=2e-5):
        super().__init__()
        dim = backbone.embed_dim
        self.backbone = backbone
        self.global_pool = global_pool
        if global_pool == "avg":
            backbone.norm = nn.Identity()
            self.fc_norm = nn.LayerNorm(dim, eps=1e-6)
        else:
            self.fc_norm = nn.Identity()
        linear = nn.Linear(dim, num_classes)
        nn.init.trunc_normal_(linear.weight, std=head_init_std)
        nn.init.zeros_(linear.bias)
        self.head = nn.Sequential(nn.BatchNorm1d(dim, affine=False, eps=1e-6), linear) if probe else linear

    def forward_features(self, images):
        tokens = self.backbone(images)
        pooled = tokens[:, 1:].mean(dim=1) if self.global_pool == "avg" else tokens[:, 0]
        return self.fc_norm(pooled)

    def forward(self, images):
        return self.head(self.forward_features(images))

    def group_matcher(self, coarse=False):
        """Layer ids for timm's layer-wise lr decay: embeddings 0, block i -> i + 1, and everything unmatched
        (norms, head) one group after the last block, as MAE-Lite's lr_decay.py (not timm's ViT, which merges
        the final norm and head into the last block's group)."""
        return dict(stem=r"^backbone\.(?:cls_token|pos_embed|patch_embed)", blocks=r"^backbone\.blocks\.(\d+)")

    def no_weight_decay(self):
        return {"backbone.pos_embed", "backbone.cls_token"}

    def encoder_parameters(self):
        return list(self.backbone.parameters())

    def encoder_eval(self):
        self.backbone.eval()


def build_classifier(cfg, num_classes, probe=False):
    """A ViTClassifier (``model.arch`` vit_*, optionally with relative position bias) or a HieraClassifier
    (hiera_tiny: MAE-Lite's fine-tuning Hiera, q-pool 3), initialised from ``cfg.pretrained`` if set."""
    m = cfg.model
    if is_hiera(m.arch):
        model = HieraClassifier(num_classes, probe, cfg.train.head_init_std,
                                **hiera_kwargs(m.arch, embed_dim=m.embed_dim, num_heads=m.num_heads),
                                img_size=m.img_size, drop_path_rate=m.drop_path)
        target = model  # the classifier's own keys are MAE-Lite's layout (norm.*, head.projection.*)
    else:
        backbone = create_vit(m.arch, img_size=m.img_size, patch_size=m.patch_size, embed_dim=m.embed_dim,
                              depth=m.depth, num_heads=m.num_heads, drop_path_rate=m.drop_path,
                              rel_pos_bias=m.rel_pos_bias)
        model = ViTClassifier(backbone, num_classes, m.global_pool, probe, cfg.train.head_init_std)
        target = backbone
    if cfg.pretrained:
        report = load_pretrained_backbone(target, cfg.pretrained)
        if dist.is_main():
            print(f"pretrained {cfg.pretrained}: {report.summary()}")
    if probe:  # only the head learns; the encoder stays in eval mode (see train_one_epoch)
        for p in model.encoder_parameters():
            p.requires_grad = False
    return model


def build_optimizer(cfg, model, total_batch, layer_decay=True):
    """timm optimizer with layer-wise decay (unless ``layer_decay=False``: a probe head has no layers) and no
    weight decay on 1-D params / pos_embed / cls_token."""
    from timm.optim import create_optimizer_v2

    o = cfg.optim
    lr = o.lr if o.lr is not None else o.blr * total_batch / 256
    kwargs = dict(momentum=o.momentum) if o.name in ("sgd", "momentum", "lars", "nesterov") else {}
    if o.name.startswith("adam"):
        kwargs = dict(betas=tuple(o.betas))
    try:
        return create_optimizer_v2(model, opt=o.name, lr=lr, weight_decay=o.weight_decay,
                                   layer_decay=o.layer_decay if layer_decay else None, **kwargs), lr
    except (ValueError, AssertionError) as exc:
        raise UserError(f"config optim.name={o.name!r}: {exc}") from None


def build_scheduler(cfg, optimizer, steps_per_epoch):
    """Per-iteration linear warmup from 0, then cosine to min_lr (timm scales each group by its lr_scale)."""
    from timm.scheduler import CosineLRScheduler

    total = cfg.train.epochs * steps_per_epoch
    warmup = min(int(cfg.optim.warmup_epochs * steps_per_epoch), total - 1)
    return CosineLRScheduler(optimizer, t_initial=max(total - warmup, 1), lr_min=cfg.optim.min_lr, warmup_t=warmup,
                             warmup_lr_init=0.0, warmup_prefix=True, t_in_epochs=False)


def build_loss(cfg, num_classes):
    """(mixup or None, criterion): soft-target CE under mixup/cutmix, else (label-smoothed) CE."""
    from timm.data import Mixup
    from timm.loss import SoftTargetCrossEntropy

    d = cfg.data
    if d.mixup > 0 or d.cutmix > 0:
        mixup = Mixup(mixup_alpha=d.mixup, cutmix_alpha=d.cutmix, label_smoothing=d.smoothing,
                      num_classes=num_classes)
        return mixup, SoftTargetCrossEntropy()
    return None, nn.CrossEntropyLoss(label_smoothing=d.smoothing)


@torch.no_grad()
def evaluate(model, loader, device, amp="none"):
    """Top-1 / top-5 (fractions) over the loader, summed across ranks. top-5 is top-k for k = #classes < 5."""
    model.eval()
    counts = torch.zeros(3, dtype=torch.float64, device=device)  # correct@1, correct@5, n
    for images, targets in loader:
        images, targets = images.to(device, non_blocking=True), targets.to(device, non_blocking=True)
        with dist.autocast(amp, device):
            logits = model(images)
        k = min(5, logits.shape[1])
        top = logits.float().topk(k, dim=1).indices
        hits = top.eq(targets[:, None])
        counts += torch.tensor([hits[:, 0].sum().item(), hits.any(dim=1).sum().item(), len(targets)],
                               dtype=torch.float64, device=device)
    counts = dist.all_reduce_mean(counts)  # mean over ranks: ratios are unchanged
    return {"top1": (counts[0] / counts[2]).item(), "top5": (counts[1] / counts[2]).item()}


def train_one_epoch(model, loader, optimizer, scheduler, criterion, mixup, epoch, steps_per_epoch, cfg,
                    device, ema=None, probe=False, stop=None, scaler=None, nan_steps=None, dist_info=None,
                    first_step=0, totals=(0.0, 0)):
    """The rest of an epoch from ``first_step`` -> (loss sum, applied steps, the next step if a stop (agreed by every
    rank) ended it early, else None). ``totals``: the sums of the steps before ``first_step`` (a resumed epoch)."""
    model.train()
    if probe:
        getattr(model, "module", model).encoder_eval()
    total, seen = totals
    for step, (images, targets) in enumerate(skip_batches(loader, first_step), start=first_step):
        update = epoch * steps_per_epoch + step
        scheduler.step_update(update)
        images, targets = images.to(device, non_blocking=True), targets.to(device, non_blocking=True)
        if mixup is not None:
            images, targets = mixup(images, targets)
        with dist.autocast(cfg.train.amp, device):
            loss = criterion(model(images).float(), targets)
        loss_bad, stop_now = step_decision(loss, stop is not None and stop.requested, dist_info)
        if loss_bad:   # a streak ends the run without a new checkpoint: the last one is the previous epoch's
            nan_steps.skipped(f"epoch {epoch + 1} step {step}", loss.detach())
            if stop_now:
                return total, seen, step + 1
            continue
        nan_steps.ok()
        optimise(loss, optimizer, scaler, cfg.optim.clip_grad, model.parameters())
        if ema is not None:
            ema.update(getattr(model, "module", model), step=update)
        total, seen = total + loss.item(), seen + 1
        if stop_now:
            return total, seen, step + 1
    return total, seen, None


def add_arguments(parser):
    parser.add_argument("config", help="recipe name in experiments/transfer/ or a YAML path")
    parser.add_argument("--data", required=True, help="ImageNet-layout folder: DIR/train/<class>/*, DIR/val/<class>/*")
    parser.add_argument("--pretrained", help="pre-trained ViT checkpoint (overrides the recipe's)")
    add_training_arguments(parser, "output folder (checkpoints, metrics.json)")


def _loaders(cfg, train_samples, val_samples, probe, info):
    train_tf, val_tf = build_transforms(cfg.model, cfg.data, augment=not probe)
    train_set = ImageListDataset(train_samples, train_tf)
    # Each rank evaluates a disjoint slice (no padding duplicates), counts are summed afterwards.
    val_set = ImageListDataset(val_samples[info.rank::info.world_size], val_tf)
    if len(train_set) < cfg.data.batch_size * info.world_size:
        raise UserError(f"train set has {len(train_set)} images, fewer than one batch of "
                        f"{cfg.data.batch_size} x {info.world_size} (lower data.batch_size)")
    # The order of an epoch is a function of (seed, epoch) on every rank count, so a stopped run resumes mid-epoch.
    sampler = torch.utils.data.DistributedSampler(train_set, info.world_size, info.rank, shuffle=True,
                                                  seed=cfg.train.seed, drop_last=True)
    common = dict(num_workers=cfg.data.num_workers, pin_memory=info.device.type == "cuda",
                  persistent_workers=cfg.data.num_workers > 0, worker_init_fn=stopping.worker_ignores_stop_signals)
    train_loader = torch.utils.data.DataLoader(train_set, cfg.data.batch_size, sampler=sampler, drop_last=True,
                                               **common)
    val_loader = torch.utils.data.DataLoader(val_set, cfg.data.batch_size, shuffle=False, **common)
    return train_loader, val_loader, sampler


def run_classification(args, probe):
    """The body of ``mimtrack finetune`` (probe=False) and ``mimtrack linprobe`` (probe=True)."""
    from timm.utils import ModelEmaV3

    overrides = training_overrides(args)
    if args.pretrained:
        overrides.append(f"pretrained={args.pretrained}")
    cfg = load_classify_config(args.config, overrides)
    classes, train_samples, val_samples = load_image_folder_splits(args.data)
    info = dist.init_distributed(cfg.train.device)
    try:
        dist.check_amp(cfg.train.amp, info.device)
        scaler = dist.grad_scaler(cfg.train.amp)
        nan_steps = NonFiniteSteps(cfg.train.max_nan_steps, info.is_main, hint="lower optim.blr or check the data")
        torch.manual_seed(cfg.train.seed + info.rank)
        model = build_classifier(cfg, len(classes), probe=probe).to(info.device)
        train_loader, val_loader, sampler = _loaders(cfg, train_samples, val_samples, probe, info)
        steps = len(train_loader)
        target = model.head if probe else model  # linear probing optimises the head only
        optimizer, lr = build_optimizer(cfg, target, cfg.data.batch_size * info.world_size, layer_decay=not probe)
        scheduler = build_scheduler(cfg, optimizer, steps)
        mixup, criterion = build_loss(cfg, len(classes))
        ema = ModelEmaV3(model, decay=cfg.train.ema_decay) if cfg.train.ema_decay else None
        start_epoch, start_step, totals, history = 0, 0, (0.0, 0), []
        if args.resume and (path := checkpoints.latest_checkpoint(args.output)):
            ckpt = checkpoints.resume_training_state(path, model, optimizer)
            if ema is not None and ckpt.get("ema") is not None:
                ema.module.load_state_dict(ckpt["ema"])
            start_epoch, start_step, history = ckpt["epoch"], ckpt.get("step", 0), ckpt["history"]
            totals = tuple(ckpt.get("epoch_totals") or (0.0, 0))
            if info.is_main:
                print(f"resumed from {path} at epoch {start_epoch}, step {start_step}")
        net = model
        if info.distributed:
            net = nn.parallel.DistributedDataParallel(model, device_ids=[info.device.index]
                                                      if info.device.type == "cuda" else None)
        if info.is_main:
            print(f"{'linprobe' if probe else 'finetune'} {cfg.name or args.config}: {len(classes)} classes, "
                  f"{len(train_samples)} train / {len(val_samples)} val images, lr {lr:.3g}, "
                  f"{cfg.train.epochs} epochs x {steps} steps")
        os.makedirs(args.output, exist_ok=True)
        with stopping.StopSignals() as stop:
            for epoch in range(start_epoch, cfg.train.epochs):
                sampler.set_epoch(epoch)
                started = time.time()
                first = start_step if epoch == start_epoch else 0
                loss_sum, seen, stopped_at = train_one_epoch(
                    net, train_loader, optimizer, scheduler, criterion, mixup, epoch, steps, cfg, info.device, ema,
                    probe, stop, scaler, nan_steps, info, first, totals if first else (0.0, 0))
                if stopped_at is not None:   # mid-epoch: keep the position and the sums, not an epoch record
                    if info.is_main:
                        _save(args.output, cfg, model, optimizer, ema, epoch, history, classes,
                              step=stopped_at, totals=(loss_sum, seen))
                        print(f"stopped by {stop.signal_name} at epoch {epoch + 1} step {stopped_at}; "
                              "resume with --resume")
                    dist.barrier()
                    stop.raise_if_signalled()   # after the checkpoint: the command exits 130 / 143
                    return 130
                entry = {"epoch": epoch + 1, "loss": loss_sum / max(seen, 1), "seconds": round(time.time() - started, 1)}
                last = epoch + 1 == cfg.train.epochs
                if (epoch + 1) % cfg.train.eval_every == 0 or last:
                    entry.update(evaluate(model, val_loader, info.device, cfg.train.amp))
                    if ema is not None:
                        scores = evaluate(ema.module, val_loader, info.device, cfg.train.amp)
                        entry.update(top1_ema=scores["top1"], top5_ema=scores["top5"])
                history.append(entry)
                if info.is_main:
                    print(json.dumps(entry))
                    _save(args.output, cfg, model, optimizer, ema, epoch + 1, history, classes)
                dist.barrier()
        if info.is_main:
            _write_metrics(args.output, cfg, history, classes, len(val_samples), probe)
    finally:
        dist.cleanup()
    return 0


def _save(output, cfg, model, optimizer, ema, next_epoch, history, classes, step=0, totals=None):
    payload = {"model": model.state_dict(), "optimizer": optimizer.state_dict(),
               "ema": ema.module.state_dict() if ema is not None else None, "epoch": next_epoch, "step": step,
               "epoch_totals": list(totals) if totals else None,
               "history": history, "classes": classes, "config": to_dict(cfg), "rng": checkpoints.rng_state()}
    checkpoints.save_checkpoint(os.path.join(output, checkpoints.LAST_NAME), payload)


def _write_metrics(output, cfg, history, classes, val_images, probe):
    scored = [h for h in history if "top1" in h]
    if not scored:
        raise UserError(f"{output}: no evaluated epoch to report")
    final = scored[-1]
    metrics = {"top1": final["top1"], "top5": final["top5"], "best_top1": max(h["top1"] for h in scored),
               "epoch": final["epoch"], "mode": "linprobe" if probe else "finetune", "config": cfg.name,
               "num_classes": len(classes), "val_images": val_images, "history": history}
    if "top1_ema" in final:
        metrics.update(top1_ema=final["top1_ema"], top5_ema=final["top5_ema"])
    write_text_atomic(os.path.join(output, "metrics.json"), json.dumps(metrics, indent=2) + "\n")
