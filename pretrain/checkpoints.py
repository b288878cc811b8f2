"""Foreign pre-trained weights -> our ViT backbones (the filters next to the models they feed, as timm's).

Files are read by :mod:`mimtrack.checkpoints` (restricted unpickler, wrapper and prefix stripping);
:func:`backbone_state_from_pretrained` maps MAE / MAE-Lite / DeiT / timm / OSTrack weights onto a backbone, resizing
the position table the way OSTrack's ``finetune_track`` does (``lib/train/admin`` -> ``load_pretrained``).
"""

import dataclasses
import os
import re

import torch

from mimtrack.checkpoints import extract_state_dict, load_checkpoint, shape_mismatch_message
from mimtrack.errors import UserError
from mimtrack.pretrain.vit import resample_pos_embed

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
    state, fmt = extract_state_dict(load_checkpoint(path), source=os.fspath(path))
    weights, report = backbone_state_from_pretrained(state, backbone, fmt, source=os.fspath(path))
    backbone.load_state_dict(weights, strict=False)
    return report
