"""Foreign checkpoint interop: the one place that reads OSTrack, MAE, MAE-Lite and DeiT files.

- :func:`load_checkpoint_file` reads any torch file safely, even one that pickles classes we do not have
  (OSTrack stores ``lib.train.admin.settings.Settings`` and ``AverageMeter`` objects next to the weights).
- :func:`extract_state_dict` finds the weights in the file's wrapper and strips DDP/experiment prefixes.
- :func:`backbone_state_from_pretrained` maps pre-trained ViT weights onto a backbone, resizing the
  position table the way OSTrack's ``finetune_track`` does.
"""

import dataclasses
import importlib
import os
import pickle
import re
import types

import torch

from mimtrack.errors import UserError
from mimtrack.pretrain.vit import resample_pos_embed

# ----------------------------------------------------------------------------------------------------------
# Safe reading


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


def load_checkpoint_file(path):
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


# ----------------------------------------------------------------------------------------------------------
# Finding the weights


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


# ----------------------------------------------------------------------------------------------------------
# Pre-trained ViT -> backbone

# Pre-training parts a tracker backbone never uses: MAE decoder, distillation teacher and adapters,
# classifier heads, DeiT's distillation token, MoCo's momentum branch, a Hiera MAE's fusion heads and encoder norm.
_IGNORED = re.compile(r"^(decoder_|mask_token$|tch_|attn_adapter\.|hidden_adapter\.|head\.|head_dist\.|fc_norm\.|"
                      r"pre_logits\.|dist_token$|momentum_encoder\.|predictor\.|box_head\.|"
                      r"multi_scale_fusion_heads\.|encoder_norm\.)")


@dataclasses.dataclass
class LoadReport:
    """What a (lenient) backbone initialisation took from a file and what it left."""

    source_format: str
    loaded: list
    missing: list
    unexpected: list
    ignored: list
    resized: list

    def summary(self):
        def few(keys):
            return ", ".join(keys[:6]) + (f" ... and {len(keys) - 6} more" if len(keys) > 6 else "")
        parts = [f"format '{self.source_format}'", f"{len(self.loaded)} tensors loaded"]
        if self.resized:
            parts.append(f"resized {few(self.resized)}")
        if self.missing:
            parts.append(f"missing {few(self.missing)}")
        if self.unexpected:
            parts.append(f"unexpected {few(self.unexpected)}")
        if self.ignored:
            parts.append(f"ignored {len(self.ignored)} ({few(self.ignored)})")
        return "; ".join(parts)


def shape_mismatch_message(mismatches, limit=3):
    """[(key, file_shape, model_shape)] -> "key: file (a, b) vs model (c, d); ... and N more"."""
    def shape(s):
        return "(" + ", ".join(map(str, s)) + ")"
    text = "; ".join(f"{k}: file {shape(a)} vs model {shape(b)}" for k, a, b in mismatches[:limit])
    if len(mismatches) > limit:
        text += f"; ... and {len(mismatches) - limit} more"
    return text


def _prefix_tokens(num_slots):
    """Slots before the square grid: 197 -> 1 (cls), 198 -> 2 (cls + dist), 196 -> 0."""
    side = int(num_slots ** 0.5)
    return num_slots - side * side


def backbone_state_from_pretrained(state, backbone, source_format="plain", source="checkpoint"):
    """Pre-trained ViT weights -> (state dict for ``backbone.load_state_dict(..., strict=False)``, LoadReport).

    ``pos_embed`` (1, P + g*g, D) is resized into the backbone's ``pos_embed`` grid and, for a tracker
    backbone, into ``pos_embed_z`` / ``pos_embed_x`` (bicubic, align_corners=False), unless the file has
    those tables itself (an OSTrack tracker file used as pre-training). Shape mismatches raise UserError.
    A model with an ``adapt_state_dict(state)`` method maps foreign names first (the filters live beside the
    models: an RPE ViT splits ``qkv.bias``, a Hiera classifier renames timm's head). A backbone without prefix
    tokens (Hiera: ``num_prefix_tokens = 0``) gets a bare resized grid.
    """
    if any(k.startswith("backbone.") for k in state):  # a tracker checkpoint: take its backbone
        state = {(k[len("backbone."):] if k.startswith("backbone.") else k): v for k, v in state.items()}
    if hasattr(backbone, "adapt_state_dict"):
        state = backbone.adapt_state_dict(state)
    target = backbone.state_dict()
    depth = len(backbone.blocks)
    out, ignored, unexpected, resized, mismatches = {}, [], [], [], []
    for key, value in state.items():
        block = re.match(r"^blocks\.(\d+)\.", key)
        beyond_depth = block and int(block.group(1)) >= depth  # e.g. D^2's 13th block
        if _IGNORED.match(key) or beyond_depth:
            ignored.append(key)
        elif key not in target:
            unexpected.append(key)
        elif key == "pos_embed":
            continue  # resized below
        elif value.shape != target[key].shape:
            mismatches.append((key, tuple(value.shape), tuple(target[key].shape)))
        else:
            out[key] = value

    if "pos_embed" in state:
        pos = state["pos_embed"]
        dim = target["pos_embed"].shape[-1]
        if pos.dim() != 3 or pos.shape[-1] != dim:
            mismatches.append(("pos_embed", tuple(pos.shape), tuple(target["pos_embed"].shape)))
        else:
            prefix = _prefix_tokens(pos.shape[1])
            for key in ("pos_embed", "pos_embed_z", "pos_embed_x"):
                if key not in target or key in out:
                    continue
                slots = target[key].shape[1]
                grid_prefix = backbone.num_prefix_tokens if key == "pos_embed" else 0
                grid = int(round((slots - grid_prefix) ** 0.5))
                table = resample_pos_embed(pos, grid, prefix)
                if key == "pos_embed" and grid_prefix:  # keep the cls slot (MAE's is all zeros if the file has none)
                    cls = pos[:, :1] if prefix else torch.zeros_like(pos[:, :1])
                    table = torch.cat([cls, table], dim=1)
                if tuple(table.shape) != tuple(pos.shape):
                    resized.append(key)
                out[key] = table.to(target[key].dtype)

    if mismatches:
        raise UserError(f"{source}: weights do not fit the model (wrong architecture?): "
                        f"{shape_mismatch_message(mismatches)}")
    if not out:
        raise UserError(f"{source}: no ViT backbone weights found (keys like {', '.join(list(state)[:4])})")
    missing = [k for k in target if k not in out]
    report = LoadReport(source_format, sorted(out), missing, sorted(unexpected), sorted(ignored), resized)
    return out, report


def load_pretrained_backbone(backbone, path):
    """Initialise ``backbone`` from a pre-training checkpoint file; returns the LoadReport."""
    state, fmt = extract_state_dict(load_checkpoint_file(path), source=os.fspath(path))
    weights, report = backbone_state_from_pretrained(state, backbone, fmt, source=os.fspath(path))
    backbone.load_state_dict(weights, strict=False)
    return report
