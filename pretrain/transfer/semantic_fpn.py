"""ViT / Hiera + Semantic FPN for semantic segmentation (MAE-Lite's ADE20K setup, ``projects/eval_tools/seg/configs/sem_fpn/semantic_fpn_t_160k*.py``).

Four block outputs (blocks 4/6/8/12 by default) at stride 16 are turned into a pyramid at strides 4/8/16/32
(two 2x deconvs, one deconv, identity, 2x max-pool), merged top-down by an FPN, and decoded by the Semantic FPN
head: each level is brought to stride 4 by conv-BN-ReLU(+2x upsample) stages of 128 channels, the levels are
summed, and a 1x1 conv classifies every pixel. A Hiera's four stages are that pyramid already.
"""

import math

import torch
import torch.nn.functional as F
from torch import nn


class ViTFeatures(nn.Module):
    """Runs a :class:`mimtrack.pretrain.vit.VisionTransformer` and returns the patch tokens of ``out_indices`` blocks as maps."""

    def __init__(self, vit, out_indices):
        super().__init__()
        if any(i < 0 or i >= vit.depth for i in out_indices):
            raise ValueError(f"out_indices {list(out_indices)} outside the {vit.depth} blocks")
        self.vit = vit
        self.vit.norm = nn.Identity()  # unused: the maps are taken from inside the stack (as mmseg's MAE backbone)
        self.out_indices = tuple(out_indices)

    def forward(self, images):
        b, _, h, w = images.shape
        grid = h // self.vit.patch_size
        x = self.vit.pos_drop(self.vit.embed(images))
        maps = []
        for i, blk in enumerate(self.vit.blocks[: max(self.out_indices) + 1]):
            x = blk(x)
            if i in self.out_indices:
                maps.append(x[:, 1:].transpose(1, 2).reshape(b, -1, grid, w // self.vit.patch_size))
        return maps


def _conv_bn_relu(cin, cout, k=3):
    return nn.Sequential(nn.Conv2d(cin, cout, k, padding=k // 2, bias=False), nn.BatchNorm2d(cout), nn.ReLU(True))


class FeaturePyramid(nn.Module):
    """Stride-16 maps -> strides 4, 8, 16, 32 (x4, x2, x1, x0.5), channels unchanged."""

    def __init__(self, dim):
        super().__init__()
        self.up4 = nn.Sequential(nn.ConvTranspose2d(dim, dim, 2, 2), nn.BatchNorm2d(dim), nn.GELU(),
                                 nn.ConvTranspose2d(dim, dim, 2, 2))
        self.up2 = nn.ConvTranspose2d(dim, dim, 2, 2)
        self.down2 = nn.MaxPool2d(2)

    def forward(self, maps):
        return [self.up4(maps[0]), self.up2(maps[1]), maps[2], self.down2(maps[3])]


class FPN(nn.Module):
    """1x1 laterals, top-down nearest-upsample-and-add, 3x3 output convs."""

    def __init__(self, in_channels, out_channels):
        super().__init__()
        self.lateral = nn.ModuleList(nn.Conv2d(c, out_channels, 1) for c in in_channels)
        self.output = nn.ModuleList(nn.Conv2d(out_channels, out_channels, 3, padding=1) for _ in in_channels)

    def forward(self, feats):
        lat = [conv(f) for conv, f in zip(self.lateral, feats)]
        for i in range(len(lat) - 1, 0, -1):
            lat[i - 1] = lat[i - 1] + F.interpolate(lat[i], size=lat[i - 1].shape[-2:], mode="nearest")
        return [conv(x) for conv, x in zip(self.output, lat)]


class SemanticFPNHead(nn.Module):
    """Each level -> stride of the finest level through conv-BN-ReLU (+ 2x bilinear up) stages; sum; classify."""

    def __init__(self, in_channels, channels, num_classes, num_levels=4, dropout=0.1):
        super().__init__()
        self.scale_heads = nn.ModuleList()
        for level in range(num_levels):
            stages = []
            for k in range(max(level, 1)):
                stages.append(_conv_bn_relu(in_channels if k == 0 else channels, channels))
                if level > 0:
                    stages.append(nn.Upsample(scale_factor=2, mode="bilinear", align_corners=False))
            self.scale_heads.append(nn.Sequential(*stages))
        self.dropout = nn.Dropout2d(dropout)
        self.classifier = nn.Conv2d(channels, num_classes, 1)

    def forward(self, feats):
        out = self.scale_heads[0](feats[0])
        for head, f in zip(self.scale_heads[1:], feats[1:]):
            out = out + F.interpolate(head(f), size=out.shape[-2:], mode="bilinear", align_corners=False)
        return self.classifier(self.dropout(out))


def _init_decoder(*parts):
    """Kaiming (fan-out) convolutions with zero bias, and a small classifier (small logits at the start, as mmseg's
    cls_seg); the last part is the SemanticFPNHead."""
    for m in parts:
        for mod in m.modules():
            if isinstance(mod, (nn.Conv2d, nn.ConvTranspose2d)):
                nn.init.kaiming_normal_(mod.weight, mode="fan_out", nonlinearity="relu")
                if mod.bias is not None:
                    nn.init.zeros_(mod.bias)
    nn.init.normal_(parts[-1].classifier.weight, std=0.01)


class ViTSemanticFPN(nn.Module):
    def __init__(self, vit, num_classes, out_indices=(3, 5, 7, 11), fpn_channels=256, head_channels=128,
                 dropout=0.1):
        super().__init__()
        dim = vit.embed_dim
        self.backbone = ViTFeatures(vit, out_indices)
        self.pyramid = FeaturePyramid(dim)
        self.fpn = FPN([dim] * 4, fpn_channels)
        self.head = SemanticFPNHead(fpn_channels, head_channels, num_classes, 4, dropout)
        _init_decoder(self.pyramid, self.fpn, self.head)

    def forward(self, images):
        """(B, 3, S, S) -> logits (B, classes, S, S)."""
        logits = self.head(self.fpn(self.pyramid(self.backbone(images))))
        return F.interpolate(logits, size=images.shape[-2:], mode="bilinear", align_corners=False)

    def group_matcher(self, coarse=False):
        """Layer ids for layer-wise lr decay: embeddings 0, block i -> i + 1, neck and head last (scale 1)."""
        # unmatched names (neck, head) form one group after the last block: lr scale 1, as mmseg's constructor
        return dict(stem=r"^backbone\.vit\.(?:cls_token|pos_embed|patch_embed)", blocks=r"^backbone\.vit\.blocks\.(\d+)")

    def no_weight_decay(self):
        return {"backbone.vit.pos_embed", "backbone.vit.cls_token"}


class HieraSemanticFPN(nn.Module):
    """Hiera + Semantic FPN: Hiera's four stage outputs are already at strides 4 / 8 / 16 / 32 (q-pool 3), so they
    feed the FPN directly (no rescaling neck), each with its own width (46 / 92 / 184 / 368 for Hiera-Tiny)."""

    def __init__(self, hiera, num_classes, fpn_channels=256, head_channels=128, dropout=0.1):
        super().__init__()
        self.backbone = hiera
        self.fpn = FPN(hiera.stage_dims, fpn_channels)
        self.head = SemanticFPNHead(fpn_channels, head_channels, num_classes, 4, dropout)
        _init_decoder(self.fpn, self.head)

    def forward(self, images):
        logits = self.head(self.fpn(self.backbone.stage_maps(images)))
        return F.interpolate(logits, size=images.shape[-2:], mode="bilinear", align_corners=False)

    def group_matcher(self, coarse=False):
        """Layer-wise lr decay: stem 0, block i -> i + 1, neck and head last (scale 1)."""
        return dict(stem=r"^backbone\.(?:pos_embed|patch_embed)", blocks=r"^backbone\.blocks\.(\d+)")

    def no_weight_decay(self):
        return {"backbone.pos_embed"}


@torch.no_grad()
def slide_inference(model, image, num_classes, crop, stride):
    """Logits (1, classes, H, W) of a (1, 3, H, W) image from overlapping crop x crop windows (averaged).

    Windows at the border are shifted inside the image; an image smaller than the crop is zero-padded
    (after normalisation) and the padding cut off again.
    """
    _, _, h, w = image.shape
    ph, pw = max(crop - h, 0), max(crop - w, 0)
    if ph or pw:
        image = F.pad(image, (0, pw, 0, ph))
    H, W = image.shape[-2:]
    rows = max(math.ceil((H - crop) / stride), 0) + 1
    cols = max(math.ceil((W - crop) / stride), 0) + 1
    logits = image.new_zeros((1, num_classes, H, W))
    count = image.new_zeros((1, 1, H, W))
    for r in range(rows):
        for c in range(cols):
            y = min(r * stride, H - crop)
            x = min(c * stride, W - crop)
            logits[..., y:y + crop, x:x + crop] += model(image[..., y:y + crop, x:x + crop]).float()
            count[..., y:y + crop, x:x + crop] += 1
    return (logits / count)[..., :h, :w]
