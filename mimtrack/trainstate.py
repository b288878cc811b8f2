"""Training state shared by the trainers: RNG snapshots, atomic checkpoints, the latest checkpoint, stop signals.

Checkpoints hold only tensors, numbers, strings, lists and dicts, so they load with
``torch.load(weights_only=True)`` (no pickled classes).
"""

import os
import random
import re
import signal
import threading

import numpy as np
import torch

from mimtrack.errors import Stopped, UserError
from mimtrack.fileio import atomic_write

LAST_NAME = "last.pth"
EPOCH_PATTERN = re.compile(r"^checkpoint_e(\d+)\.pth$")


def epoch_checkpoint_name(epoch):
    """File name of the checkpoint kept for ``epoch``: ``checkpoint_eNNNN.pth``."""
    return f"checkpoint_e{epoch:04d}.pth"


def rng_state():
    """Snapshot of the python, numpy, torch (and CUDA, when present) generators, weights_only-loadable."""
    version, internal, gauss = random.getstate()
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    state = {
        "python": [version, list(internal), gauss],
        "numpy": {"kind": kind, "keys": torch.from_numpy(keys.astype(np.int64)), "pos": int(pos),
                  "has_gauss": int(has_gauss), "cached_gaussian": float(cached)},
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state):
    """Restore a snapshot taken by :func:`rng_state`."""
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    n = state["numpy"]
    np.random.set_state((n["kind"], n["keys"].numpy().astype(np.uint32), n["pos"], n["has_gauss"],
                         n["cached_gaussian"]))
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        cuda_states = state["cuda"]
        if len(cuda_states) == torch.cuda.device_count():
            torch.cuda.set_rng_state_all(cuda_states)
        else:  # a different GPU count: restore what maps, the rest keep their seeds
            for index, s in enumerate(cuda_states[: torch.cuda.device_count()]):
                torch.cuda.set_rng_state(s, index)


def save_checkpoint(path, payload):
    """``torch.save(payload)`` to ``path`` atomically: readers see the old file or the new one, never half."""
    with atomic_write(path, "wb") as f:
        torch.save(payload, f)


def load_checkpoint(path, map_location="cpu"):
    """Load a checkpoint written by :func:`save_checkpoint` (weights_only); UserError on a bad file."""
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise UserError(f"checkpoint not found: {path}")
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except Exception as exc:  # corrupt / foreign pickle: one line, not a traceback
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise UserError(f"{path}: cannot read checkpoint ({first})") from None


def resume_model_and_optimizer(path, model, optimizer):
    """For ``--resume``: load a checkpoint's ``model``, ``optimizer`` and ``rng`` states; returns the checkpoint.

    A checkpoint written by another recipe (other shapes or keys) is a one-line UserError.
    """
    ckpt = load_checkpoint(path)
    try:
        model.load_state_dict(ckpt["model"])
        optimizer.load_state_dict(ckpt["optimizer"])
    except (KeyError, RuntimeError, ValueError) as exc:
        raise UserError(f"{path}: does not match this recipe, cannot resume "
                        f"({str(exc).splitlines()[0][:120]})") from None
    set_rng_state(ckpt["rng"])
    return ckpt


def remove_stale_temp_files(output_dir, log=None):
    """Delete the ``.tmp-*`` files an interrupted write left in ``output_dir`` (a process killed while it wrote a
    checkpoint: :func:`mimtrack.fileio.atomic_write` had no chance to remove its temporary file). Only one run
    writes to a run folder, so any temporary file found when it starts is stale. Returns their names."""
    output_dir = os.fspath(output_dir)
    if not os.path.isdir(output_dir):
        return []
    stale = sorted(name for name in os.listdir(output_dir)
                   if name.startswith(".tmp-") and os.path.isfile(os.path.join(output_dir, name)))
    for name in stale:
        os.remove(os.path.join(output_dir, name))
        if log is not None:
            log(f"removed {os.path.join(output_dir, name)}: the temporary file of an interrupted checkpoint write")
    return stale


def latest_checkpoint(output_dir):
    """The checkpoint to resume from in ``output_dir``: ``last.pth`` if present, else the highest
    ``checkpoint_eNNNN.pth``; None when there is none (or the folder does not exist)."""
    output_dir = os.fspath(output_dir)
    last = os.path.join(output_dir, LAST_NAME)
    if os.path.isfile(last):
        return last
    if not os.path.isdir(output_dir):
        return None
    numbered = [(int(m.group(1)), name) for name in os.listdir(output_dir) if (m := EPOCH_PATTERN.match(name))]
    if not numbered:
        return None
    return os.path.join(output_dir, max(numbered)[1])


def worker_ignores_stop_signals(_worker_id=None):
    """DataLoader ``worker_init_fn``: workers ignore SIGINT / SIGTERM and leave stopping to the main process.

    ``timeout``, a terminal's Ctrl-C and job schedulers signal the whole process group; a worker killed by SIGTERM
    makes torch raise "DataLoader worker ... is killed by signal" in the main process while it writes its stop
    checkpoint, a traceback instead of a clean exit. The main process's :class:`StopSignals` saves and returns; the
    workers end when their loader is shut down (or when they see the main process gone)."""
    for sig in StopSignals.SIGNALS:
        signal.signal(sig, signal.SIG_IGN)


class StopSignals:
    """Context manager turning SIGINT / SIGTERM into a flag the training loop polls.

        with StopSignals() as stop:
            for step in ...:
                ...
                if stop.requested:
                    save a checkpoint; break

    After its checkpoint the loop calls :meth:`raise_if_signalled`: a stopped run is not a finished one, and the
    ``mimtrack`` command exits 130 (SIGINT) / 143 (SIGTERM). A second signal while the flag is already set raises
    :class:`~mimtrack.errors.Stopped` at once (the user insists). Outside the main thread signals cannot be
    caught, so the manager is inert there. ``trigger()`` sets the flag by hand (tests; no exit status).
    """

    SIGNALS = (signal.SIGINT, signal.SIGTERM)

    def __init__(self):
        self.requested = False
        self.signal_name = None
        self.signum = None
        self._previous = {}

    def trigger(self, name="manual"):
        self.requested = True
        self.signal_name = name

    def _handle(self, signum, frame):
        if self.requested:
            raise Stopped(signum, f"second {signal.Signals(signum).name}: stopping now")
        self.trigger(signal.Signals(signum).name)
        self.signum = signum

    def raise_if_signalled(self):
        """Raise :class:`~mimtrack.errors.Stopped` when a signal (not ``trigger()``) set the flag."""
        if self.signum is not None:
            raise Stopped(self.signum)

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():
            for sig in self.SIGNALS:
                self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def __exit__(self, *exc):
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
        self._previous.clear()
        return False
