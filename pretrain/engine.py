"""The pre-training loop: one process or torchrun DDP, AMP on CUDA, atomic checkpoints, exact resume.

``--output DIR`` receives ``last.pth`` after every epoch (and when stopped by SIGINT/SIGTERM mid-epoch):
``{'model': state}`` in MAE-Lite's layout (``model.<timm key>`` for the encoder, the decoder and adapters
beside it), plus ``epoch``/``step`` (position), ``optimizer``, ``scaler``, ``rng`` and ``config`` for
``--resume``; ``checkpoint_eNNNN.pth`` (weights only) every ``train.checkpoint_every`` epochs; ``log.json``.
Resuming restores weights, optimiser, scaler, RNG and the position in the epoch's sample order, so the
continuation is identical to an uninterrupted run.
"""

import json
import math
import os
import time

import torch
from tqdm import tqdm

from mimtrack import distributed
from mimtrack.config import to_dict
from mimtrack.errors import UserError
from mimtrack.fileio import write_text_atomic
from mimtrack.loop import NonFiniteSteps, agree, optimise, step_decision
from mimtrack.checkpoints import (LAST_NAME, epoch_checkpoint_name, latest_checkpoint, remove_stale_temp_files,
                                  resume_training_state, rng_state, save_checkpoint)
from mimtrack.stopping import StopSignals, worker_ignores_stop_signals
from mimtrack.pretrain.data import EpochSampler, build_dataset, collate_skipping


def build_method(cfg, teacher=None):
    """The training module for ``cfg``: MAEPretraining (optionally distilling from ``teacher`` path) or MoCoV3."""
    m = cfg.model
    arch = dict(img_size=m.img_size, patch_size=m.patch_size, embed_dim=m.embed_dim, depth=m.depth,
                num_heads=m.num_heads)
    if cfg.method == "mocov3":
        from mimtrack.pretrain.mocov3 import MoCoV3, mocov3_vit

        encoder = mocov3_vit(m.arch, **arch)
        c = cfg.mocov3
        return MoCoV3(encoder, c.dim, c.mlp_dim, c.temperature, c.momentum)
    from mimtrack.pretrain.distill import MAEPretraining, load_teacher
    from mimtrack.pretrain.hiera import is_hiera
    from mimtrack.pretrain.mae import mae_vit
    from mimtrack.pretrain.mae_hiera import mae_hiera

    a, d = cfg.mae, cfg.distill
    decoder = dict(decoder_dim=a.decoder_dim, decoder_depth=a.decoder_depth, decoder_heads=a.decoder_heads,
                   norm_pix_loss=a.norm_pix_loss)
    if is_hiera(m.arch):
        student = mae_hiera(m.arch, img_size=m.img_size, embed_dim=m.embed_dim, num_heads=m.num_heads, **decoder)
    else:
        student = mae_vit(m.arch, **arch, **decoder, decode_layer=a.decode_layer,
                          extra_attention_block=d.extra_attention_block)
    if not d.enabled:
        return MAEPretraining(student, a.mask_ratio)
    teacher = teacher or d.teacher
    if not teacher:
        raise UserError(f"recipe {cfg.name!r} distils from a teacher: pass --teacher CKPT (or set distill.teacher)")
    teacher_net = load_teacher(teacher, d.teacher_arch, d.teacher_heads, m.img_size, m.patch_size)
    return MAEPretraining(student, a.mask_ratio, teacher_net, d.attn_weight, d.student_attn_layer,
                          d.teacher_attn_layer, d.hidden_weight, d.student_hidden_layer, d.teacher_hidden_layer)


def param_groups(module, weight_decay):
    """Trainable parameters in two groups: no weight decay for biases and 1-D tensors (norms), timm's rule."""
    decay, no_decay = [], []
    for name, p in module.named_parameters():
        if not p.requires_grad:
            continue
        (no_decay if p.ndim <= 1 or name.endswith(".bias") else decay).append(p)
    return [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]


def lr_at(step, base_lr, warmup_steps, total_steps, min_lr=0.0):
    """Per-iteration schedule: linear warm-up from 0, then half-cosine down to ``min_lr``."""
    if step < warmup_steps:
        return base_lr * step / warmup_steps
    progress = (step - warmup_steps) / max(1, total_steps - warmup_steps)
    return min_lr + (base_lr - min_lr) * 0.5 * (1.0 + math.cos(math.pi * progress))


def _to_device(batch, device):
    if isinstance(batch, (tuple, list)):
        return tuple(t.to(device, non_blocking=True) for t in batch)
    return batch.to(device, non_blocking=True)


def _restore(path, method, optimizer, scaler):
    # the frozen teacher is not saved (trainable_state_dict): it comes from --teacher again
    ckpt = resume_training_state(path, method, optimizer, scaler=scaler, required=("epoch", "step", "rng"),
                                 not_saved=("teacher.",))
    return ckpt["epoch"], ckpt["step"], ckpt.get("history", []), ckpt.get("epoch_totals")


def train(cfg, data_dir, output_dir, teacher=None, resume=False, max_steps=None, log=print):
    """Pre-train per ``cfg`` (a checked PretrainConfig); returns the per-epoch history (list of dicts).

    ``max_steps``: stop (with a checkpoint) after this many optimiser steps in this call, as a signal would.
    """
    t = cfg.train
    info = distributed.init_distributed(t.device)
    try:
        return _train(cfg, info, os.fspath(data_dir), os.fspath(output_dir), teacher, resume, max_steps, log)
    finally:
        distributed.cleanup()


def _train(cfg, info, data_dir, output_dir, teacher, resume, max_steps, log):
    t, device, main = cfg.train, info.device, info.is_main
    last = os.path.join(output_dir, LAST_NAME)
    if not resume and os.path.exists(last):
        raise UserError(f"--output {output_dir} already holds a run ({LAST_NAME}): pass --resume to continue it "
                        "or choose another folder")
    torch.manual_seed(t.seed + info.rank)  # model init is identical across ranks (DDP broadcasts rank 0's anyway)
    dataset = build_dataset(cfg, data_dir)
    method = build_method(cfg, teacher).to(device)
    if info.distributed and cfg.method == "mocov3":
        method = torch.nn.SyncBatchNorm.convert_sync_batchnorm(method)
    total_batch = t.batch_size * info.world_size
    lr = t.lr if t.lr is not None else t.blr * total_batch / 256
    optimizer = torch.optim.AdamW(param_groups(method, t.weight_decay), lr=lr, betas=t.betas)
    distributed.check_amp(t.amp, device)
    scaler = distributed.grad_scaler(t.amp)

    steps_per_epoch = EpochSampler(len(dataset), t.batch_size, t.seed, 0, world_size=info.world_size) \
        .batches_per_epoch()
    if steps_per_epoch == 0:
        raise UserError(f"--data {data_dir}: {len(dataset)} images are fewer than one batch of {total_batch} "
                        f"(train.batch_size={t.batch_size} x {info.world_size} processes)")
    total_steps, warmup_steps = t.epochs * steps_per_epoch, t.warmup_epochs * steps_per_epoch

    start_epoch, start_step, history, resumed_totals = 0, 0, [], None
    if main:
        remove_stale_temp_files(output_dir, log=log)
    found = latest_checkpoint(output_dir) if resume else None
    if found:
        start_epoch, start_step, history, resumed_totals = _restore(found, method, optimizer, scaler)
        if main:
            log(f"resuming from {found}: epoch {start_epoch + 1}, step {start_step}/{steps_per_epoch}")
    elif resume and main:
        log(f"--resume: no checkpoint in {output_dir}; starting from scratch")

    net = method
    if info.distributed:
        ids = [device.index] if device.type == "cuda" else None
        net = torch.nn.parallel.DistributedDataParallel(method, device_ids=ids)
    if main:
        n_params = sum(p.numel() for p in method.parameters() if p.requires_grad)
        log(f"{cfg.name}: {len(dataset)} images, {steps_per_epoch} steps/epoch x {t.epochs} epochs, "
            f"batch {total_batch}, lr {lr:.3g}, {n_params / 1e6:.2f} M trainable parameters, {device}")

    def checkpoint(epoch, step, totals=None):
        if not main:
            return
        payload = {"model": method.trainable_state_dict(), "epoch": epoch, "step": step,
                   "optimizer": optimizer.state_dict(), "scaler": scaler.state_dict() if scaler else None,
                   "rng": rng_state(), "config": to_dict(cfg), "history": history,
                   "teacher": os.path.abspath(teacher or cfg.distill.teacher or "") if cfg.distill.enabled else ""}
        if step and totals is not None:   # mid-epoch: the resumed epoch's statistics cover every step
            sums, seen, skipped = totals
            payload["epoch_totals"] = {"sums": {k: float(v) for k, v in sums.items()}, "seen": seen,
                                       "skipped": list(skipped)}
        save_checkpoint(last, payload)
        write_text_atomic(os.path.join(output_dir, "log.json"), json.dumps(history, indent=1) + "\n")

    steps_done = 0
    nan_steps = NonFiniteSteps(t.max_nan_steps, main, hint="lower train.blr or check the data")
    with StopSignals() as stop:
        for epoch in range(start_epoch, t.epochs):
            sampler = EpochSampler(len(dataset), t.batch_size, t.seed, epoch, info.rank, info.world_size,
                                   start_step if epoch == start_epoch else 0)
            loader = torch.utils.data.DataLoader(
                dataset, batch_size=t.batch_size, sampler=sampler, num_workers=cfg.data.num_workers,
                collate_fn=collate_skipping, pin_memory=device.type == "cuda", drop_last=True,
                worker_init_fn=worker_ignores_stop_signals,
                generator=torch.Generator().manual_seed(t.seed + epoch))  # keeps the global RNG untouched
            net.train()
            sums, seen, skipped, started = {}, 0, [], time.time()
            if epoch == start_epoch and start_step and resumed_totals:
                sums = {k: torch.tensor(v, device=device) for k, v in resumed_totals["sums"].items()}
                seen, skipped = int(resumed_totals["seen"]), list(resumed_totals["skipped"])
            first = start_step if epoch == start_epoch else 0
            bar = tqdm(loader, total=steps_per_epoch, initial=first, desc=f"epoch {epoch + 1}/{t.epochs}",
                       disable=not main, dynamic_ncols=True, leave=False)
            for step, (images, skipped_now) in enumerate(bar, start=first):
                skipped += skipped_now
                if images is None:  # every image of this batch was unreadable
                    continue
                it = epoch * steps_per_epoch + step
                for group in optimizer.param_groups:
                    group["lr"] = lr_at(it, lr, warmup_steps, total_steps, t.min_lr)
                images = _to_device(images, device)
                with distributed.autocast(t.amp, device):
                    loss, parts = net(images, it / total_steps)
                loss_bad, stop_now = step_decision(loss, stop.requested, info)
                if loss_bad:
                    def save_state(epoch=epoch, step=step):
                        checkpoint(epoch, step + 1, (sums, seen, skipped))
                        return last
                    nan_steps.skipped(f"epoch {epoch + 1} step {step}", loss.detach(), save=save_state)
                else:
                    nan_steps.ok()
                    optimise(loss, optimizer, scaler)
                    for name, value in {"loss": loss.detach(), **parts}.items():  # summed on device: no sync
                        sums[name] = sums.get(name, 0.0) + value.float()
                    seen += 1
                steps_done += 1
                if main and step % 20 == 0:
                    bar.set_postfix(loss=f"{float(loss.detach()):.4f}", lr=f"{optimizer.param_groups[0]['lr']:.2e}")
                if (max_steps is not None and steps_done >= max_steps) or stop_now:
                    if step + 1 < steps_per_epoch:
                        checkpoint(epoch, step + 1, (sums, seen, skipped))
                        if main:
                            log(f"stopped at epoch {epoch + 1} step {step + 1}; resume with --resume")
                        stop.raise_if_signalled()   # after the checkpoint: the command exits 130 / 143
                        return history
            bar.close()
            stats = _epoch_stats(epoch, sums, seen, skipped, time.time() - started, device)
            if stats["skipped_images"] and main:
                log(f"epoch {epoch + 1}: skipped {stats['skipped_images']} unreadable image(s): "
                    f"{', '.join(skipped[:3])}{' ...' if len(skipped) > 3 else ''}")
            if seen == 0 and stats["skipped_images"]:
                raise UserError(f"--data {data_dir}: every image of epoch {epoch + 1} was unreadable")
            history.append(stats)
            checkpoint(epoch + 1, 0)
            if main and t.checkpoint_every and (epoch + 1) % t.checkpoint_every == 0:
                save_checkpoint(os.path.join(output_dir, epoch_checkpoint_name(epoch + 1)),
                                {"model": method.trainable_state_dict(), "epoch": epoch + 1})
            if main:
                log(" ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in stats.items()))
            stopping_now = agree([stop.requested], info)[0]   # every rank leaves the loop together
            if stopping_now and epoch + 1 < t.epochs:
                if main:
                    log(f"stopped after epoch {epoch + 1}; resume with --resume")
                stop.raise_if_signalled()
            if stopping_now or (max_steps is not None and steps_done >= max_steps):
                break
    distributed.barrier()
    return history


def _epoch_stats(epoch, sums, seen, skipped, seconds, device):
    """Epoch means of the logged values, averaged over processes; skipped images summed over processes."""
    names = sorted(sums)
    values = torch.tensor([float(sums[n]) / max(seen, 1) for n in names] + [float(len(skipped))],
                          dtype=torch.float64, device=device)
    values = distributed.all_reduce_mean(values)
    stats = {"epoch": epoch + 1}
    stats.update({n: float(v) for n, v in zip(names, values[:-1].tolist())})
    stats["skipped_images"] = int(round(float(values[-1]) * distributed.get_world_size()))
    stats["seconds"] = round(seconds, 1)
    return stats
