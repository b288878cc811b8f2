"""The rules every training loop shares (tracker training, pre-training, classification and segmentation
transfer), so that each loop keeps only its step:

- a non-finite loss (or gradient) skips its step; ``train.max_nan_steps`` in a row stop the run with a checkpoint and
  a one-line error (:class:`NonFiniteSteps`): one bad batch does not end a long run, a diverged run does not spin;
- under DDP every rank takes the same branch (skip a step, stop) because the ranks agree on it first
  (:func:`agree`); a flag checked on one rank alone would leave the others waiting in the next collective;
- a stopped run resumes mid-epoch: the epoch's sample order is a function of (seed, epoch), and
  :func:`skip_batches` leaves out the batches already done;
- stopping (SIGINT / SIGTERM -> checkpoint -> exit 130 / 143) is :class:`mimtrack.stopping.StopSignals`;
  checkpoints, resume state and the run folder's files are :mod:`mimtrack.checkpoints`.
"""

import itertools
import sys

import torch
from torch.utils.data import DataLoader

from mimtrack.errors import UserError


def agree(flags, dist_info):
    """``flags`` (bools, or a tensor of them on the device) -> a list of bools, the same on every rank: each true when
    it is true on any rank. One small all-reduce under DDP and one host synchronisation."""
    t = flags.float() if torch.is_tensor(flags) else torch.tensor([1.0 if f else 0.0 for f in flags])
    if dist_info is not None and dist_info.distributed:
        t = t.to(dist_info.device)
        torch.distributed.all_reduce(t, op=torch.distributed.ReduceOp.MAX)
    return [bool(v > 0) for v in t.tolist()]


def step_decision(loss, stop_requested, dist_info):
    """After the forward pass -> (skip this step: the loss is not finite on some rank, stop after it: some rank was
    asked to), the same on every rank, at the cost of one host synchronisation."""
    flags = torch.stack([~torch.isfinite(loss.detach()), torch.tensor(bool(stop_requested), device=loss.device)])
    return tuple(agree(flags, dist_info))


def optimise(loss, optimizer, scaler=None, clip=None, parameters=None):
    """One update from ``loss``: zero the gradients, backward (scaled under fp16), clip their norm to ``clip``
    (after unscaling) when given, step (the scaler skips an overflowing fp16 step itself)."""
    optimizer.zero_grad(set_to_none=True)
    if scaler is not None:
        scaler.scale(loss).backward()
        scaler.unscale_(optimizer)
    else:
        loss.backward()
    if clip:
        torch.nn.utils.clip_grad_norm_(parameters, clip)
    if scaler is not None:
        scaler.step(optimizer)
        scaler.update()
    else:
        optimizer.step()


class NonFiniteSteps:
    """Counts skipped steps. ``ok()`` after an applied step; ``skipped(where, loss)`` after a skipped one: it reports
    the step (stderr, main process) and, at ``limit`` in a row, calls ``save()`` (-> the checkpoint path) and raises
    the UserError that ends the run."""

    def __init__(self, limit, is_main=True, hint="lower the learning rate or check the data"):
        if limit < 1:
            raise UserError(f"config train.max_nan_steps={limit}: must be >= 1")
        self.limit, self.is_main, self.hint = limit, is_main, hint
        self.streak, self.total = 0, 0

    def ok(self):
        self.streak = 0

    def skipped(self, where, loss, save=None):
        self.streak += 1
        self.total += 1
        if self.is_main:
            print(f"{where}: non-finite loss or gradient (loss={float(loss)}); step skipped ({self.streak} in a row)",
                  file=sys.stderr)
        if self.streak >= self.limit:
            last = save() if save is not None else None
            saved = f"; state saved to {last}" if last else ""
            raise UserError(f"training stopped at {where}: {self.streak} consecutive steps gave a non-finite loss "
                            f"(train.max_nan_steps); {self.hint}{saved}")


def skip_batches(loader, n):
    """``loader`` without its first ``n`` batches. A DataLoader is rebuilt over the remaining sampler indices
    (no sample of the skipped batches is loaded); any other iterable is advanced."""
    if n == 0:
        return loader
    if isinstance(loader, DataLoader) and loader.batch_size is not None:
        indices = list(loader.sampler)[n * loader.batch_size:]
        return DataLoader(loader.dataset, batch_size=loader.batch_size, sampler=indices,
                          num_workers=loader.num_workers, collate_fn=loader.collate_fn, drop_last=loader.drop_last,
                          pin_memory=loader.pin_memory, multiprocessing_context=loader.multiprocessing_context,
                          worker_init_fn=loader.worker_init_fn)
    return itertools.islice(loader, n, None)
