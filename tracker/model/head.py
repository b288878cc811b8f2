"""OSTrack's CENTER box head: centre heatmap, sub-cell offset and box size on the search feature map."""

import torch
from torch import nn

BRANCHES = ("ctr", "offset", "size")
OUTPUTS = {"ctr": 1, "offset": 2, "size": 2}


def conv_bn_relu(in_channels, out_channels):
    return nn.Sequential(
        nn.Conv2d(in_channels, out_channels, kernel_size=3, stride=1, padding=1, bias=True),
        nn.BatchNorm2d(out_channels),
        nn.ReLU(inplace=True),
    )


def decode(score_map, size_map, offset_map):
    """Box at the score argmax -> (B, 4) (cx, cy, w, h) normalised to the search crop.

    idx_y = idx // fs, idx_x = idx % fs; cx = (idx_x + off_x) / fs, cy = (idx_y + off_y) / fs; w, h read from
    ``size_map`` at the same cell (already normalised to the crop side).
    """
    b, _, h, w = score_map.shape
    idx = score_map.flatten(1).argmax(dim=1, keepdim=True)  # (B, 1)
    idx_y = torch.div(idx, w, rounding_mode="floor")
    idx_x = idx % w
    cell = idx.unsqueeze(1).expand(b, 2, 1)
    size = size_map.flatten(2).gather(2, cell).squeeze(-1)  # (B, 2)
    offset = offset_map.flatten(2).gather(2, cell).squeeze(-1)  # (B, 2)
    cx = (idx_x.to(offset.dtype) + offset[:, :1]) / w
    cy = (idx_y.to(offset.dtype) + offset[:, 1:]) / h
    return torch.cat([cx, cy, size], dim=1)


class CenterHead(nn.Module):
    """Three branches (ctr, offset, size), each 4 x [3x3 conv + BN + ReLU] with channels
    C -> c -> c/2 -> c/4 -> c/8, then a 1x1 conv to 1 / 2 / 2 maps.

    Attribute names (``conv1_ctr`` ... ``conv5_size``) are OSTrack's, so checkpoints load both ways.
    """

    def __init__(self, in_channels, channels=256):
        super().__init__()
        widths = [in_channels, channels, channels // 2, channels // 4, channels // 8]
        for branch in BRANCHES:  # registration order = OSTrack's state-dict order
            for i in range(4):
                setattr(self, f"conv{i + 1}_{branch}", conv_bn_relu(widths[i], widths[i + 1]))
            setattr(self, f"conv5_{branch}", nn.Conv2d(widths[4], OUTPUTS[branch], kernel_size=1))
        for p in self.parameters():
            if p.dim() > 1:
                nn.init.xavier_uniform_(p)

    def _branch(self, name, x):
        for i in range(1, 6):
            x = getattr(self, f"conv{i}_{name}")(x)
        return x

    def forward(self, x):
        """Features (B, C, fs, fs) -> (score_map (B,1,fs,fs), size_map (B,2,fs,fs), offset_map (B,2,fs,fs))."""
        score = torch.clamp(self._branch("ctr", x).sigmoid(), min=1e-4, max=1 - 1e-4)
        size = self._branch("size", x).sigmoid()
        offset = self._branch("offset", x)
        return score, size, offset

    @staticmethod
    def decode(score_map, size_map, offset_map):
        """See :func:`decode`; callers may pass a re-weighted score map (e.g. Hann-windowed)."""
        return decode(score_map, size_map, offset_map)
