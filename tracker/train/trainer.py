"""The tracker training loop: OSTrack's recipe on one process or under torchrun (DDP), resumable bit for bit.

Checkpoint (``DIR/last.pth``, ``DIR/checkpoint_eNNNN.pth``): ``{'net', 'epoch', 'step', 'global_step',
'optimizer', 'scheduler', 'scaler', 'rng', 'config'}`` where ``epoch`` counts finished epochs and ``step`` the
batches already done in the next one (non-zero only for a checkpoint taken on a stop signal mid-epoch).
``net`` is the bare model's state dict: it loads with ``mimtrack.tracker.checkpoints.load_tracker_weights`` and strictly
in OSTrack's code. Resuming restores weights, optimizer, scheduler, scaler and every RNG, and re-enters the epoch
at the same batch; the data pipeline draws each sample from (seed, epoch, index) alone, so the continued run
matches an uninterrupted one exactly.
"""

import json
import os
import random
import sys
import time

import numpy as np
import torch
import yaml

from mimtrack import checkpoints, distributed, loop, stopping
from mimtrack.config import to_dict
from mimtrack.errors import UserError
from mimtrack.tracker.checkpoints import load_tracker_weights, tracker_payload
from mimtrack.tracker.train.losses import TrackingLoss
from mimtrack.tracker.train.optim import build_optimizer, build_scheduler, keep_rate_for_epoch

STAT_KEYS = ("loss", "focal", "giou", "l1", "iou")
STEP_INPUTS = ("template", "search", "search_box", "search_heatmap", "target_present")   # the last optional
POSTFIX_EVERY = 10   # steps between progress-bar loss / IoU updates


def check_train_config(cfg):
    """UserError, naming the key, for settings that cannot train (before any data is listed)."""
    t, d = cfg.train, cfg.data
    for key, value, low in (("train.epochs", t.epochs, 1), ("train.batch_size", t.batch_size, 1),
                            ("train.max_nan_steps", t.max_nan_steps, 1), ("data.samples_per_epoch",
                            d.samples_per_epoch, 1), ("data.num_workers", d.num_workers, 0),
                            ("train.checkpoint_every", t.checkpoint_every, 0), ("train.val_every", t.val_every, 0)):
        if value < low:
            raise UserError(f"config {key}={value}: must be >= {low}")
    if d.val and d.val_samples < 1:
        raise UserError(f"config data.val_samples={d.val_samples}: must be >= 1 when data.val is set")
    if t.init and t.pretrained:
        raise UserError(f"config train.init={t.init} and train.pretrained={t.pretrained}: set one (init loads the "
                        "whole tracker, pretrained only its backbone)")
    return cfg


def seed_everything(seed):
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def data_loader_factory(cfg, locations, dist_info):
    """loader_factory for :class:`Trainer` over tracker.data: one loader per split, built once (datasets are
    listed once), moved to each epoch with ``set_epoch``. Builds the train loader now, so bad data fails early."""
    from mimtrack.tracker.data import build_train_loader

    loaders = {}

    def loader(split):
        if split not in loaders:
            loaders[split] = build_train_loader(cfg, locations, epoch=0, rank=dist_info.rank,
                                                world_size=dist_info.world_size, split=split)
            if len(loaders[split]) == 0:
                entries = ", ".join(e.name for e in (cfg.data.train if split == "train" else cfg.data.val))
                raise UserError(f"data.{split} ({entries}): fewer samples than one batch of {cfg.train.batch_size}"
                                f" per process (data.samples_per_epoch / val_samples, train.batch_size)")
        return loaders[split]

    def factory(epoch, split):
        chosen = loader(split)
        chosen.set_epoch(epoch)
        return chosen

    loader("train")
    return factory


class Trainer:
    """Trains ``cfg`` (TrackerConfig) into ``output_dir``.

    ``loader_factory(epoch, split)`` returns the batches of one epoch for this rank ("train" or "val"); dict
    batches with ``template``, ``search``, ``search_box``, ``search_heatmap`` and optionally ``target_present``
    (see tracker.data). ``on_step`` (optional) is called with the trainer after every optimisation step (progress
    hooks, tests).
    """

    def __init__(self, cfg, output_dir, loader_factory, dist_info=None, resume=False, on_step=None, progress=True):
        self.cfg = cfg
        self.output_dir = os.fspath(output_dir)
        self.loader_factory = loader_factory
        self.dist = dist_info or distributed.init_distributed("cpu")
        self.device = self.dist.device
        self.on_step = on_step
        self.progress = progress and self.dist.is_main
        self.train_cfg = check_train_config(cfg).train
        self._check_amp()

        resume_path = checkpoints.latest_checkpoint(self.output_dir) if resume else None
        if not resume and os.path.isfile(os.path.join(self.output_dir, checkpoints.LAST_NAME)):
            raise UserError(f"--output {self.output_dir}: already holds a run (last.pth); "
                            "pass --resume to continue it or choose another folder")
        if self.dist.is_main:
            checkpoints.remove_stale_temp_files(self.output_dir, log=lambda m: print(m, file=sys.stderr))
            if resume and resume_path is None:
                print(f"--resume: no checkpoint in {self.output_dir}; starting from scratch", file=sys.stderr)
        from mimtrack.tracker.model import build_model

        seed_everything(self.train_cfg.seed)  # same initial weights on every rank
        model = build_model(cfg, pretrained=None if resume_path else self.train_cfg.pretrained)
        if self.train_cfg.init and not resume_path:
            # strict: the recipe must describe the same network; fp16 weights are copied into the fp32 parameters
            load_tracker_weights(model, self.train_cfg.init)
        self.model = model.to(self.device)
        self.optimizer = build_optimizer(self.model, self.train_cfg)
        self.scheduler = build_scheduler(self.optimizer, self.train_cfg)
        self.scaler = distributed.grad_scaler(self.train_cfg.amp)
        self.criterion = TrackingLoss.from_config(self.train_cfg)
        self.epoch, self.step, self.global_step = 0, 0, 0
        self.nan_steps = loop.NonFiniteSteps(self.train_cfg.max_nan_steps, self.dist.is_main,
                                             hint="lower train.lr or check the data")
        # the buffers a training forward moves (BatchNorm's running statistics) and their pre-step snapshot
        self._moving_buffers = [b for b in self.model.buffers()]
        self._buffer_snapshot = [b.detach().clone() for b in self._moving_buffers]
        self._resume_rng = None
        self._totals = None          # the running sums of the epoch in progress (kept in mid-epoch checkpoints)
        self._resume_totals = None
        seed_everything(self.train_cfg.seed + self.dist.rank)  # per-rank randomness (drop-path)
        if resume_path:
            self._load(resume_path)
        self.net = self.model
        if self.dist.distributed:
            # find_unused_parameters: cls_token and the 14x14 pos_embed stay in the model unused (as in OSTrack)
            self.net = torch.nn.parallel.DistributedDataParallel(
                self.model, device_ids=[self.device.index] if self.device.type == "cuda" else None,
                find_unused_parameters=True)
        self.tensorboard = self._open_tensorboard() if self.dist.is_main else None

    # ------------------------------------------------------------------ setup
    def _check_amp(self):
        distributed.check_amp(self.train_cfg.amp, self.device)

    def _open_tensorboard(self):
        if not self.train_cfg.tensorboard:
            return None
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError:
            raise UserError("config train.tensorboard=true: the tensorboard package is not installed "
                            "(pip install 'mimtrack[tensorboard]')") from None
        return SummaryWriter(os.path.join(self.output_dir, "tensorboard"))

    def _load(self, path):
        ckpt = checkpoints.resume_training_state(path, self.model, self.optimizer, weights="net",
                                                 scheduler=self.scheduler, scaler=self.scaler,
                                                 required=("epoch", "step", "rng"), restore_rng=False)
        self.epoch, self.step = int(ckpt["epoch"]), int(ckpt["step"])
        self.global_step = int(ckpt.get("global_step", 0))
        ranks = ckpt.get("rng_ranks")
        self._resume_rng = ranks[self.dist.rank] if ranks and len(ranks) == self.dist.world_size else ckpt["rng"]
        totals = ckpt.get("epoch_totals")
        if self.step and totals:
            self._resume_totals = totals[self.dist.rank] if isinstance(totals, list) else totals
        if self.dist.is_main:
            print(f"resuming from {path}: epoch {self.epoch}, step {self.step} in it", file=sys.stderr)

    # ------------------------------------------------------------------ checkpoints and logs
    def checkpoint_payload(self):
        rng = checkpoints.rng_state()
        payload = tracker_payload(
            self.model, epoch=self.epoch, step=self.step, global_step=self.global_step,
            optimizer=self.optimizer.state_dict(), scheduler=self.scheduler.state_dict(),
            scaler=self.scaler.state_dict() if self.scaler is not None else None, rng=rng, config=to_dict(self.cfg))
        totals = None
        if self.step and self._totals is not None:   # mid-epoch: the resumed epoch's record covers every step
            totals = {"sums": [float(v) for v in self._totals["sums"]],
                      **{k: int(v) for k, v in self._totals.items() if k != "sums"}}
        if self.dist.distributed:  # every rank's generators (and sums), so each resumes its own stream
            gathered = [None] * self.dist.world_size
            torch.distributed.all_gather_object(gathered, rng)
            payload["rng_ranks"] = gathered
            if totals is not None:
                gathered = [None] * self.dist.world_size
                torch.distributed.all_gather_object(gathered, totals)
                totals = gathered
        if totals is not None:
            payload["epoch_totals"] = totals
        return payload

    def save(self, keep_epoch_copy=False):
        """Write ``last.pth`` (and ``checkpoint_eNNNN.pth``) atomically from rank 0; returns the last.pth path."""
        payload = self.checkpoint_payload()  # collective under DDP: every rank takes part
        last = os.path.join(self.output_dir, checkpoints.LAST_NAME)
        if self.dist.is_main:
            if keep_epoch_copy:
                checkpoints.save_checkpoint(os.path.join(self.output_dir, checkpoints.epoch_checkpoint_name(self.epoch)),
                                           payload)
            checkpoints.save_checkpoint(last, payload)
        distributed.barrier()
        return last

    def trim_metrics(self):
        """Make ``metrics.jsonl`` hold exactly the records of the state being resumed (none for a fresh start):
        epochs logged after the checkpoint (a run killed between its log line and its checkpoint) would otherwise
        be logged twice, and a half-written last line would break every reader."""
        path = os.path.join(self.output_dir, "metrics.jsonl")
        if not self.dist.is_main or not os.path.isfile(path):
            return
        kept = []
        with open(path, encoding="utf-8", errors="replace") as f:
            for line in f:
                try:
                    record = json.loads(line)
                    epoch, step = int(record["epoch"]), int(record.get("step", 0))
                except (ValueError, KeyError, TypeError):
                    continue
                if epoch < self.epoch or (record.get("phase") == "nan" and epoch == self.epoch and step <= self.step):
                    kept.append(line if line.endswith("\n") else line + "\n")
        from mimtrack.fileio import write_text_atomic

        write_text_atomic(path, "".join(kept))

    def log(self, record):
        if not self.dist.is_main:
            return
        line = json.dumps(record, sort_keys=False) + "\n"
        with open(os.path.join(self.output_dir, "metrics.jsonl"), "a", encoding="utf-8") as f:
            f.write(line)  # one whole line per write: a reader never sees half a record
        if self.tensorboard is not None:
            for key, value in record.items():
                if isinstance(value, float):
                    self.tensorboard.add_scalar(f"{record['phase']}/{key}", value, self.global_step)

    def write_config(self):
        if self.dist.is_main:
            from mimtrack.fileio import write_text_atomic

            write_text_atomic(os.path.join(self.output_dir, "config.yaml"),
                              yaml.safe_dump(to_dict(self.cfg), sort_keys=False))

    # ------------------------------------------------------------------ one step
    def autocast(self):
        return distributed.autocast(self.train_cfg.amp, self.device)

    def forward_loss(self, batch, keep_rate):
        # only what the step reads goes to the device (a sample also carries template_box, for inspection)
        batch = {k: batch[k].to(self.device, non_blocking=True) for k in STEP_INPUTS if k in batch}
        with self.autocast():
            outputs = self.net(batch["template"], batch["search"], ce_keep_rate=keep_rate)
        return self.criterion(outputs, batch["search_box"], batch["search_heatmap"], batch.get("target_present"))

    def train_step(self, batch, keep_rate, stop_requested=False):
        """One optimisation step -> (stats dict of tensors, True if the step was applied, True if any rank was asked
        to stop).

        One host synchronisation per step (whether to apply it) and, under DDP, one small all-reduce that agrees on
        it and on the stop request. The backward always runs (DDP's gradient reduction must stay in step on every
        rank), so one decision covers a non-finite loss and a non-finite gradient. A skipped step leaves the model
        exactly as it was: the forward pass already moved the BatchNorm running statistics (possibly to NaN), so
        they are put back from a snapshot taken before it (a few KB, copied in place).
        """
        moving = self._moving_buffers
        if moving:
            torch._foreach_copy_(self._buffer_snapshot, moving)
        loss, stats = self.forward_loss(batch, keep_rate)
        self.optimizer.zero_grad(set_to_none=True)
        if self.scaler is not None:
            self.scaler.scale(loss).backward()
            self.scaler.unscale_(self.optimizer)
        else:
            loss.backward()
        grad_norm = torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.train_cfg.grad_clip)
        flags = torch.stack([~torch.isfinite(loss.detach()), ~torch.isfinite(grad_norm),
                             torch.tensor(bool(stop_requested), device=loss.device)])
        # the one host synchronisation; every rank takes the same branch (a skipped step, a stop) or DDP would hang
        bad_loss, bad_grad, stop = loop.agree(flags, self.dist)
        if bad_loss or (bad_grad and self.scaler is None):
            self.optimizer.zero_grad(set_to_none=True)
            if moving:
                torch._foreach_copy_(moving, self._buffer_snapshot)
            return stats, False, stop
        if self.scaler is not None:  # fp16: the scaler skips inf/NaN gradients itself and lowers its scale
            self.scaler.step(self.optimizer)
            self.scaler.update()
        else:
            self.optimizer.step()
        return stats, True, stop

    # ------------------------------------------------------------------ epochs
    def _epoch_batches(self, epoch):
        """Iterator over this epoch's batches, positioned at ``self.step`` (and the RNG restored on resume)."""
        if self._resume_rng is not None and self.step == 0:
            checkpoints.set_rng_state(self._resume_rng)   # epoch boundary: before the loader draws its seeds
            self._resume_rng = None
        loader = self.loader_factory(epoch, "train")
        total = len(loader)
        iterator = iter(loop.skip_batches(loader, self.step))  # samples depend on (seed, epoch, index) only
        if self._resume_rng is not None:
            checkpoints.set_rng_state(self._resume_rng)   # mid-epoch: the RNG as it was after batch `step`
            self._resume_rng = None
        return iterator, total

    def _nan(self, stats):
        self.log({"phase": "nan", "epoch": self.epoch, "step": self.step, "loss": float(stats["loss"]),
                  "streak": self.nan_steps.streak + 1})
        self.nan_steps.skipped(f"epoch {self.epoch} step {self.step}", stats["loss"], save=self.save)

    def train_epoch(self, epoch, stop):
        """Run the rest of ``epoch``; returns False if a stop signal ended it early (after a checkpoint)."""
        self.net.train()
        keep_rate = keep_rate_for_epoch(self.cfg, epoch)
        iterator, total = self._epoch_batches(epoch)
        resumed = self._resume_totals or {}
        self._resume_totals = None
        sums = torch.tensor(resumed.get("sums", [0.0] * len(STAT_KEYS)), dtype=torch.float64, device=self.device)
        totals = self._totals = {"sums": sums,
                                 "applied": resumed.get("applied", 0), "skipped": resumed.get("skipped", 0),
                                 "redrawn": resumed.get("redrawn", 0)}
        samples, start = 0, time.perf_counter()
        bar = None
        if self.progress:
            from tqdm import tqdm

            bar = tqdm(total=total, initial=self.step, desc=f"epoch {epoch}", leave=False, dynamic_ncols=True)
        for batch in iterator:
            stats, ok, stop_now = self.train_step(batch, keep_rate, stop.requested)
            self.step += 1
            if ok:
                self.global_step += 1
                self.nan_steps.ok()
                totals["applied"] += 1
                totals["sums"] += torch.stack([stats[k] for k in STAT_KEYS]).to(torch.float64)  # stays on the device
            else:
                totals["skipped"] += 1
                self._nan(stats)
            samples += int(batch["search"].shape[0])
            totals["redrawn"] += int(torch.as_tensor(batch.get("skipped", 0)).sum())
            if bar is not None:
                bar.update(1)
                if self.step % POSTFIX_EVERY == 0 or self.step == total:  # reading them synchronises the device
                    bar.set_postfix(loss=f"{float(stats['loss']):.3f}", iou=f"{float(stats['iou']):.3f}")
            if self.on_step is not None:
                self.on_step(self)
            # under DDP the ranks agree on a stop inside the step's one all-reduce (a signal landing after it is acted
            # on one step later); a single process reads its own flag
            if stop_now if self.dist.distributed else stop.requested:
                if bar is not None:
                    bar.close()
                path = self.save()
                if self.dist.is_main:
                    print(f"stopped by {stop.signal_name or 'a signal'} at epoch {epoch} step {self.step}; "
                          f"resume with --resume (state in {path})", file=sys.stderr)
                return False
        if bar is not None:
            bar.close()
        self._totals = None
        means = distributed.all_reduce_mean(totals["sums"] / max(totals["applied"], 1)).cpu()
        elapsed = time.perf_counter() - start
        record = {"phase": "train", "epoch": epoch, "step": self.global_step}
        record.update({k: float(v) for k, v in zip(STAT_KEYS, means)})
        record.update({"lr": float(self.optimizer.param_groups[0]["lr"]),
                       "lr_backbone": float(self.optimizer.param_groups[1]["lr"]),
                       "keep_rate": keep_rate if keep_rate is not None else 1.0,
                       "samples_per_s": samples * self.dist.world_size / max(elapsed, 1e-9),
                       "nan_steps": totals["skipped"], "skipped": totals["redrawn"]})
        self.log(record)
        return True

    @torch.no_grad()
    def validate(self, epoch):
        self.net.eval()
        keep_rate = keep_rate_for_epoch(self.cfg, epoch)
        sums, count = torch.zeros(len(STAT_KEYS), dtype=torch.float64), 0
        for batch in self.loader_factory(epoch, "val"):
            _, stats = self.forward_loss(batch, keep_rate)
            if torch.isfinite(stats["loss"]):
                sums += torch.tensor([float(stats[k]) for k in STAT_KEYS], dtype=torch.float64)
                count += 1
        means = distributed.all_reduce_mean((sums / max(count, 1)).to(self.device)).cpu()
        record = {"phase": "val", "epoch": epoch, "step": self.global_step}
        record.update({k: float(v) for k, v in zip(STAT_KEYS, means)})
        self.log(record)
        return record

    def fit(self):
        """Train until ``train.epochs``; returns the path of the final (or stop-signal) checkpoint."""
        os.makedirs(self.output_dir, exist_ok=True)
        self.trim_metrics()
        self.write_config()
        t = self.train_cfg
        last = os.path.join(self.output_dir, checkpoints.LAST_NAME)
        with stopping.StopSignals() as stop:
            while self.epoch < t.epochs:
                epoch = self.epoch
                if not self.train_epoch(epoch, stop):
                    stop.raise_if_signalled()   # after the checkpoint: the command exits 130 / 143
                    return last
                self.epoch, self.step = epoch + 1, 0
                self.scheduler.step()
                if self.cfg.data.val and t.val_every > 0 and self.epoch % t.val_every == 0:
                    self.validate(epoch)
                periodic = t.checkpoint_every > 0 and self.epoch % t.checkpoint_every == 0
                if periodic or self.epoch == t.epochs:
                    last = self.save(keep_epoch_copy=periodic or self.epoch == t.epochs)
                if loop.agree([stop.requested], self.dist)[0]:
                    if not (periodic or self.epoch == t.epochs):
                        last = self.save()
                    if self.epoch < t.epochs:
                        stop.raise_if_signalled()
                    return last
        if self.tensorboard is not None:
            self.tensorboard.close()
        return last
