"""The OSTrack network (one-stream ViT + CENTER head) and its builder from a :class:`TrackerConfig`."""

import math
import os

from torch import nn

from mimtrack.errors import UserError
from mimtrack.pretrain.vit import vit_kwargs
from mimtrack.tracker.config import load_tracker_config
from mimtrack.tracker.model.backbone import TEMPLATE_RANGES, OneStreamViT
from mimtrack.tracker.model.head import CenterHead, cell_box, decode


class OSTrack(nn.Module):
    """``backbone`` (OneStreamViT) + ``box_head`` (CenterHead); state-dict keys are OSTrack's."""

    def __init__(self, backbone, box_head):
        super().__init__()
        self.backbone = backbone
        self.box_head = box_head

    def forward(self, template, search, ce_keep_rate=None):
        """template (B,3,Hz,Wz), search (B,3,Hx,Wx) normalised images -> dict with ``score_map`` (B,1,fs,fs),
        ``size_map`` / ``offset_map`` (B,2,fs,fs), ``pred_boxes`` (B,1,4) (cx, cy, w, h in [0, 1] of the
        search crop), ``backbone_feat`` (B, Lz+Lx, D) and ``removed_indexes_s``."""
        return self.forward_cached(self.backbone.embed_template(template), search, ce_keep_rate)

    def forward_cached(self, template_tokens, search, ce_keep_rate=None):
        """:meth:`forward` with the template embedded once by ``backbone.embed_template`` (what a tracker caches)."""
        tokens, aux = self.backbone.forward_cached(template_tokens, search, ce_keep_rate=ce_keep_rate)
        score_map, size_map, offset_map = self.box_head(self.search_features(tokens))
        boxes = decode(score_map, size_map, offset_map)
        return {
            "pred_boxes": boxes.view(-1, 1, 4),
            "score_map": score_map,
            "size_map": size_map,
            "offset_map": offset_map,
            "backbone_feat": tokens,
            "removed_indexes_s": aux["removed_indexes_s"],
        }

    def search_features(self, tokens):
        """Backbone tokens (B, Lz + Lx, D) -> the search tokens as a feature map (B, D, fs, fs)."""
        fs = self.backbone.grid_x
        return tokens[:, -fs * fs:].transpose(1, 2).reshape(tokens.shape[0], -1, fs, fs)

    def locate(self, template_tokens, search, window=None):
        """A tracking step: -> (score_map (B,1,fs,fs), box (B,4) (cx, cy, w, h) normalised to the search crop,
        peak (B,) the flat index of the chosen cell).

        The box is ``decode(score_map * window, size_map, offset_map)`` of :meth:`forward_cached`, but size and
        offset are computed at the chosen cell only (:meth:`CenterHead.size_offset_at`): the same sums, up to float
        rounding, for about a third of the head's work. ``window`` (1, 1, fs, fs), e.g. a Hann window, or None.
        """
        tokens, _ = self.backbone.forward_cached(template_tokens, search)
        feat = self.search_features(tokens)
        score_map = self.box_head.score(feat)
        response = score_map * window if window is not None else score_map
        peak = response.flatten(1).argmax(dim=1)
        size, offset = self.box_head.size_offset_at(feat, peak)
        return score_map, cell_box(peak, size, offset, feat.shape[-1]), peak


def _check_config(cfg):
    b, ce, crop = cfg.model.backbone, cfg.model.ce, cfg.crop
    for name, size in (("crop.template_size", crop.template_size), ("crop.search_size", crop.search_size)):
        if size <= 0 or size % b.patch_size:
            raise UserError(f"{name}={size}: must be a positive multiple of the patch size {b.patch_size}")
    factor = cfg.inference.search_factor
    if factor is not None and not (math.isfinite(factor) and factor > 0):
        raise UserError(f"inference.search_factor={factor}: must be > 0 (or null: crop.search_factor)")
    rate = cfg.inference.size_update
    if not (math.isfinite(rate) and 0 < rate <= 1):
        raise UserError(f"inference.size_update={rate}: must be in (0, 1] (1: the network's size as is)")
    if len(ce.locations) != len(ce.keep_ratio):
        raise UserError(f"model.ce: {len(ce.locations)} locations but {len(ce.keep_ratio)} keep ratios")
    if any(not 0 < r <= 1 for r in ce.keep_ratio):
        raise UserError(f"model.ce.keep_ratio={ce.keep_ratio}: ratios must lie in (0, 1]")
    if ce.template_range not in TEMPLATE_RANGES:
        raise UserError(f"model.ce.template_range={ce.template_range!r}: expected one of {', '.join(TEMPLATE_RANGES)}")
    if cfg.model.head.type != "center":
        raise UserError(f"model.head.type={cfg.model.head.type!r}: only 'center' is implemented")
    if cfg.model.head.channels < 8 or cfg.model.head.channels % 8:
        raise UserError(f"model.head.channels={cfg.model.head.channels}: must be a multiple of 8")


def build_model(cfg, pretrained=None):
    """Build OSTrack from ``cfg``: a TrackerConfig, or a shipped recipe name / YAML path (as ``load_tracker``
    takes); ``pretrained``: a pre-training checkpoint (MAE, MAE-Lite, DeiT, or an OSTrack file) to initialise the
    backbone from. Its LoadReport is printed and kept as ``model.pretrained_report``."""
    if isinstance(cfg, (str, os.PathLike)):
        cfg = load_tracker_config(cfg)
    _check_config(cfg)
    b, ce = cfg.model.backbone, cfg.model.ce
    arch = vit_kwargs(b.arch, embed_dim=b.embed_dim, depth=b.depth, num_heads=b.num_heads)
    if any(not 0 <= loc < arch["depth"] for loc in ce.locations):
        raise UserError(f"model.ce.locations={ce.locations}: block indices must lie in [0, {arch['depth']})")
    if arch["embed_dim"] % arch["num_heads"]:
        raise UserError(f"model.backbone: embed_dim {arch['embed_dim']} is not divisible by {arch['num_heads']} heads")
    backbone = OneStreamViT(
        template_size=cfg.crop.template_size,
        search_size=cfg.crop.search_size,
        ce_locations=list(ce.locations),
        ce_keep_ratios=list(ce.keep_ratio),
        ce_template_range=ce.template_range,
        pretrained_grid=b.pretrained_grid,
        patch_size=b.patch_size,
        drop_path_rate=b.drop_path,
        **arch,
    )
    model = OSTrack(backbone, CenterHead(arch["embed_dim"], cfg.model.head.channels))
    model.pretrained_report = None
    if pretrained:
        from mimtrack.pretrain.checkpoints import load_pretrained_backbone

        model.pretrained_report = load_pretrained_backbone(backbone, pretrained)
        print(f"backbone initialised from {pretrained}: {model.pretrained_report.summary()}")
    return model
