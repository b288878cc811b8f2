"""Tracker checkpoints in OSTrack's layout: ``{'net': state_dict, ...}``, loaded with strict=True.

Files written here load in OSTrack's code (``ckpt['net']``) and OSTrack / MAE-Lite tracker files load here.
"""

import os
import pathlib
import re
import sys

import torch

from mimtrack.checkpoints import extract_state_dict, load_checkpoint, save_checkpoint, shape_mismatch_message
from mimtrack.errors import UserError

# The bundled demo tracker: package weights and the recipe they were trained with.
DEMO_WEIGHTS = pathlib.Path(__file__).resolve().parent / "weights" / "demo.pth"
DEMO_RECIPE = "photos_cpu"   # experiments/tracking/photos_cpu.yaml: the recipe demo.pth was trained with
NO_DEMO_WEIGHTS = "no bundled demo weights in this version: pass --config C --checkpoint W"

VIT_NAMES = {192: "ViT-Tiny", 384: "ViT-Small", 768: "ViT-Base"}


def tracker_payload(model, half=False, **extra):
    """``{'net': state_dict, **extra}``, the one tracker-file layout (OSTrack's): what training checkpoints, shipped
    weights and :func:`save_tracker_checkpoint` hold. ``model``: a module (DDP / DataParallel unwrapped, as OSTrack's
    trainer does) or a state dict; tensors go to the CPU, floating ones to fp16 when ``half`` (``load_state_dict``
    casts them back into fp32 parameters; integer buffers such as BatchNorm's ``num_batches_tracked`` keep theirs)."""
    if "net" in extra:
        raise ValueError("'net' is reserved for the model's state dict")
    state = model if isinstance(model, dict) else getattr(model, "module", model).state_dict()
    state = {k: v.detach().cpu() for k, v in state.items()}
    if half:
        state = {k: (v.half() if v.is_floating_point() else v).contiguous() for k, v in state.items()}
    return {"net": state, **extra}


def save_tracker_checkpoint(path, model, half=False, **extra):
    """Write :func:`tracker_payload` to ``path`` atomically."""
    save_checkpoint(path, tracker_payload(model, half=half, **extra))


def _describe(state):
    """(embed dim, depth, search grid) of a tracker state dict, None where the key is absent."""
    proj = state.get("backbone.patch_embed.proj.weight")
    blocks = {int(m.group(1)) for k in state if (m := re.match(r"backbone\.blocks\.(\d+)\.", k))}
    pos_x = state.get("backbone.pos_embed_x")
    return (proj.shape[0] if proj is not None else None, len(blocks) or None,
            int(round(pos_x.shape[1] ** 0.5)) if pos_x is not None else None)


def _architecture_hint(file_state, model_state):
    (dim_f, depth_f, grid_f), (dim_m, depth_m, grid_m) = _describe(file_state), _describe(model_state)
    if dim_f and dim_f != dim_m:
        return (f"wrong architecture: checkpoint is {VIT_NAMES.get(dim_f, 'a ViT')} (embed {dim_f}) "
                f"but the config builds {dim_m}")
    if depth_f and depth_f != depth_m:
        return f"wrong architecture: checkpoint has {depth_f} blocks but the config builds {depth_m}"
    if grid_f and grid_f != grid_m:
        return f"wrong search size: checkpoint has a {grid_f}x{grid_f} search grid but the config builds {grid_m}x{grid_m}"
    return "checkpoint does not match the model"


def check_finite(state, path):
    """UserError when a floating-point weight holds NaN or inf: such a network tracks without complaint and returns
    full-frame boxes (a diverged run's checkpoint or a corrupt file)."""
    bad = [k for k, v in state.items() if torch.is_tensor(v) and v.is_floating_point() and not torch.isfinite(v).all()]
    if bad:
        more = f" and {len(bad) - 1} more" if len(bad) > 1 else ""
        raise UserError(f"{path}: non-finite weights (NaN or inf) in {bad[0]}{more}: a diverged or corrupt checkpoint")


def load_tracker_weights(model, path):
    """Load a tracker checkpoint (``{'net': sd}`` or a plain state dict) into ``model``, strictly.

    Returns the file's other top-level entries (epoch, ...). Missing, unexpected or mis-shaped keys raise a
    UserError with a short readable list.
    """
    path = os.fspath(path)
    ckpt = load_checkpoint(path)
    state, fmt = extract_state_dict(ckpt, source=path)
    if not any(k.startswith(("backbone.", "box_head.")) for k in state):
        raise UserError(f"{path}: not a tracker checkpoint (format '{fmt}', no backbone./box_head. weights); "
                        "a pre-training checkpoint initialises the backbone instead (build_model(cfg, pretrained=...))")
    target = getattr(model, "module", model).state_dict()
    missing = [k for k in target if k not in state]
    unexpected = [k for k in state if k not in target]
    mismatched = [(k, tuple(v.shape), tuple(target[k].shape)) for k, v in state.items()
                  if k in target and v.shape != target[k].shape]
    if missing or unexpected or mismatched:
        problems = []
        if mismatched:
            problems.append(shape_mismatch_message(mismatched))
        for label, keys in (("missing", missing), ("unexpected", unexpected)):
            if keys:
                more = f" ... and {len(keys) - 3} more" if len(keys) > 3 else ""
                problems.append(f"{label} {', '.join(keys[:3])}{more}")
        raise UserError(f"{path}: {_architecture_hint(state, target)}: {'; '.join(problems)}")
    check_finite(state, path)
    getattr(model, "module", model).load_state_dict(state, strict=True)
    return {k: v for k, v in ckpt.items() if k != fmt} if fmt != "plain" else {}


def resolve_network(config=None, checkpoint=None, overrides=None):
    """(cfg, checkpoint) for a tracker: both None means the bundled tracker; a checkpoint needs its recipe.

    Checks everything a network load needs before any weight is read (a missing file is a one-line error)."""
    from mimtrack.tracker.config import load_tracker_config

    if config is None and checkpoint is None:
        if not DEMO_WEIGHTS.is_file():
            raise UserError(NO_DEMO_WEIGHTS)
        config, checkpoint = DEMO_RECIPE, DEMO_WEIGHTS
    if config is None:
        raise UserError(f"--checkpoint {checkpoint}: also pass --config, the recipe the checkpoint was trained with")
    cfg = load_tracker_config(config, overrides)
    if checkpoint is not None and not os.path.isfile(checkpoint):
        raise UserError(f"--checkpoint {checkpoint}: file not found")
    return cfg, checkpoint


def load_network(cfg, checkpoint):
    """The tracker network of ``cfg`` with ``checkpoint``'s weights (None: untrained, with a warning), in eval mode."""
    from mimtrack.tracker.model import build_model

    model = build_model(cfg)
    if checkpoint is None:
        print(f"warning: no checkpoint given: tracking with the untrained weights of {cfg.name}", file=sys.stderr)
    else:
        load_tracker_weights(model, checkpoint)
    return model.eval()
