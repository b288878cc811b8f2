"""Checkpoint I/O, the one module every loop and loader uses: read safely, write atomically, resume.

- :func:`load_checkpoint` reads any torch file on the CPU without executing or importing anything it names (a
  restricted unpickler): our own checkpoints, and foreign ones that pickle classes we do not have (OSTrack stores
  ``lib.train.admin.settings.Settings`` and ``AverageMeter`` objects next to its weights).
- :func:`extract_state_dict` finds the weights inside a file's wrapper (``net`` / ``model`` / ``state_dict`` /
  ``model_state``) and strips DDP / experiment prefixes.
- :func:`save_checkpoint` writes atomically (a reader sees the old file or the new one, never half of one).
- Resuming: :func:`latest_checkpoint`, :func:`remove_stale_temp_files`, :func:`rng_state` / :func:`set_rng_state`,
  :func:`resume_training_state` (what every loop's ``--resume`` loads).

What maps foreign weights onto a model (MAE / MAE-Lite / DeiT / timm / OSTrack -> a ViT backbone; a tracker file
-> the tracker) lives next to the model it feeds: ``mimtrack.pretrain.checkpoints`` and
``mimtrack.tracker.checkpoints``.
"""

import importlib
import os
import pickle
import random
import re
import types

import numpy as np
import torch

from mimtrack.errors import UserError
from mimtrack.fileio import atomic_write

# ----------------------------------------------------------------------------------------------------------
# Reading


class ForeignObject:
    """Inert stand-in for a pickled object whose class we do not import; keeps what the pickle gave it."""

    def __init__(self, *args, **kwargs):
        self.args, self.kwargs, self.state, self.items = args, kwargs, None, {}

    def __setstate__(self, state):
        self.state = state

    def __setitem__(self, key, value):  # dict subclasses pickle their items with SETITEMS
        self.items[key] = value

    def append(self, value):  # list subclasses pickle their items with APPENDS
        self.items[len(self.items)] = value

    def extend(self, values):
        for value in values:
            self.append(value)

    def __repr__(self):
        return f"<foreign {type(self).__module__}.{type(self).__qualname__}>"


_SAFE_GLOBALS = {
    "collections": {"OrderedDict", "defaultdict"},
    "builtins": {"set", "frozenset", "slice", "range", "complex", "bytearray", "bytes", "str", "int", "float",
                 "bool", "tuple", "list", "dict", "object"},
    "copyreg": {"_reconstructor"},
    "_codecs": {"encode"},
    "torch": {"Size", "device"},
    "torch._utils": {"_rebuild_tensor", "_rebuild_tensor_v2", "_rebuild_tensor_v3", "_rebuild_parameter",
                     "_rebuild_parameter_with_state", "_rebuild_device_tensor_from_numpy"},
    "torch._tensor": {"_rebuild_from_type_v2"},
    "torch.nn.parameter": {"Parameter"},
    "numpy": {"dtype", "ndarray"},
    "numpy._core.multiarray": {"scalar", "_reconstruct"},
    "numpy._core.numeric": {"_frombuffer"},
    "numpy.core.multiarray": {"scalar", "_reconstruct"},  # numpy 1.x names of the same functions
    "numpy.core.numeric": {"_frombuffer"},
}
_foreign_classes = {}


def _foreign_class(module, name):
    key = (module, name)
    if key not in _foreign_classes:
        _foreign_classes[key] = type(name, (ForeignObject,), {"__module__": module, "__qualname__": name})
    return _foreign_classes[key]


def _is_torch_constant(module, name):
    """``torch.float16``, ``torch.strided``, ...: dtypes, layouts and memory formats pickle as globals."""
    value = getattr(torch, name, None) if module == "torch" else None
    return isinstance(value, (torch.dtype, torch.layout, torch.memory_format))


class RestrictedUnpickler(pickle.Unpickler):
    """Rebuilds tensors, containers, builtins and numpy values; every other global becomes a
    :class:`ForeignObject` subclass of the same name, without importing its module."""

    def find_class(self, module, name):
        if name in _SAFE_GLOBALS.get(module, ()) or _is_torch_constant(module, name):
            return getattr(_import_numpy_aware(module), name)
        return _foreign_class(module, name)


def _import_numpy_aware(module):
    """numpy 2 renamed ``numpy.core`` to ``numpy._core``: import whichever this numpy has."""
    if module.startswith(("numpy.core.", "numpy._core.")):
        tail = module.split(".", 2)[2]
        try:
            return importlib.import_module(f"numpy._core.{tail}")
        except ImportError:
            return importlib.import_module(f"numpy.core.{tail}")
    return importlib.import_module(module)


# What torch.load wants as ``pickle_module``: an ``Unpickler`` class and a ``load`` function.
_restricted_pickle = types.ModuleType("mimtrack_restricted_pickle")
_restricted_pickle.Unpickler = RestrictedUnpickler
_restricted_pickle.load = lambda f, **kwargs: RestrictedUnpickler(f, **kwargs).load()


def load_checkpoint(path):
    """Read a torch checkpoint on the CPU without executing or importing anything it names."""
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise UserError(f"checkpoint not found: {path}")
    try:
        ckpt = torch.load(path, map_location="cpu", pickle_module=_restricted_pickle, weights_only=False)
    except Exception as e:  # torch raises RuntimeError / EOFError / UnpicklingError / ... for broken files
        reason = (str(e).strip().splitlines() or [type(e).__name__])[0][:160]
        raise UserError(f"{path}: not a readable PyTorch checkpoint (truncated or corrupt?): {reason}") from e
    if not isinstance(ckpt, dict):
        raise UserError(f"{path}: expected a checkpoint dict, found {type(ckpt).__name__}")
    return ckpt


def extract_state_dict(ckpt, source="checkpoint"):
    """Checkpoint dict -> (state_dict, format), format one of ``net`` (OSTrack trainer), ``model``
    (MAE / MAE-Lite / DeiT), ``state_dict`` (MoCo-v3 style), ``model_state`` (official Hiera) or ``plain``.

    The DDP ``module.`` and MAE-Lite experiment-wrapper ``model.`` prefixes are stripped from every key
    that has them (``module.model.blocks.0...`` -> ``blocks.0...``; ``module.tch_model.x`` -> ``tch_model.x``).
    """
    if not isinstance(ckpt, dict):
        raise UserError(f"{source}: expected a checkpoint dict, found {type(ckpt).__name__}")
    for fmt in ("net", "model", "state_dict", "model_state"):
        if isinstance(ckpt.get(fmt), dict):
            state, found = ckpt[fmt], fmt
            break
    else:
        state, found = ckpt, "plain"
    tensors = {k: v for k, v in state.items() if isinstance(k, str) and torch.is_tensor(v)}
    if not tensors:
        keys = ", ".join(map(str, list(ckpt)[:8]))
        raise UserError(f"{source}: no weights found (top-level keys: {keys})")
    out = {}
    for key, value in tensors.items():
        key = key[len("module."):] if key.startswith("module.") else key
        key = key[len("model."):] if key.startswith("model.") else key
        out[key] = value
    return out, found


def shape_mismatch_message(mismatches, limit=3):
    """[(key, file_shape, model_shape)] -> "key: file (a, b) vs model (c, d); ... and N more"."""
    def shape(s):
        return "(" + ", ".join(map(str, s)) + ")"
    text = "; ".join(f"{k}: file {shape(a)} vs model {shape(b)}" for k, a, b in mismatches[:limit])
    if len(mismatches) > limit:
        text += f"; ... and {len(mismatches) - limit} more"
    return text


# ----------------------------------------------------------------------------------------------------------
# Writing and resuming

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


def resume_training_state(path, model, optimizer, *, weights="model", scheduler=None, scaler=None, required=(),
                          not_saved=(), restore_rng=True):
    """For ``--resume`` (every training loop): load a training checkpoint's weights (``ckpt[weights]``), optimizer,
    scheduler and fp16 scaler states and its RNG snapshot into the live objects; returns the checkpoint.

    ``required``: other entries the loop needs (epoch, step, ...). ``not_saved``: key prefixes the model has but a
    checkpoint leaves out on purpose (a frozen teacher). A checkpoint of another kind or of another recipe (other
    keys or shapes) is a one-line UserError. ``restore_rng`` False: the loop restores the RNG itself (per rank).
    """
    ckpt = load_checkpoint(path)
    absent = [k for k in (weights, "optimizer", *required) if k not in ckpt]
    if absent:
        raise UserError(f"{path}: not a training checkpoint (no {', '.join(absent)}); cannot --resume from it")
    try:
        result = model.load_state_dict(ckpt[weights], strict=not not_saved)
        missing = [k for k in getattr(result, "missing_keys", []) if not k.startswith(tuple(not_saved))]
        unexpected = list(getattr(result, "unexpected_keys", []))
        if missing or unexpected:
            raise RuntimeError(f"missing {missing[:3]}, unexpected {unexpected[:3]}")
        optimizer.load_state_dict(ckpt["optimizer"])
        if scheduler is not None:
            scheduler.load_state_dict(ckpt["scheduler"])
        if scaler is not None and ckpt.get("scaler"):
            scaler.load_state_dict(ckpt["scaler"])
    except (KeyError, RuntimeError, ValueError) as exc:
        raise UserError(f"{path}: does not match this recipe, cannot resume "
                        f"({str(exc).splitlines()[0][:120]})") from None
    if restore_rng:
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
