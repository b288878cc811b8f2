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


def decode(score_map, size_map, offset_map, window=None, with_peak=False):
    """Box at the argmax of ``score_map * window`` (``window`` None: of the score map itself) -> (B, 4) (cx, cy, w, h)
    normalised to the search crop (square maps, as OSTrack's); with ``with_peak``: (box, peak (B,) flat cell index).

    idx_y = idx // fs, idx_x = idx % fs; cx = (idx_x + off_x) / fs, cy = (idx_y + off_y) / fs; w, h read from
    ``size_map`` at the same cell (already normalised to the crop side). The one decode of full maps (training, the
    ``maps`` graph, modules other than OSTrack); :meth:`OSTrack.locate` is the tracking step that computes size and
    offset at the chosen cell only and ends in the same :func:`cell_box`.
    """
    b = score_map.shape[0]
    response = score_map * window if window is not None else score_map
    peak = response.flatten(1).argmax(dim=1)  # (B,)
    cell = peak.view(b, 1, 1).expand(b, 2, 1)
    size = size_map.flatten(2).gather(2, cell).squeeze(-1)  # (B, 2)
    offset = offset_map.flatten(2).gather(2, cell).squeeze(-1)  # (B, 2)
    box = cell_box(peak, size, offset, score_map.shape[-1])
    return (box, peak) if with_peak else box


def cell_box(idx, size, offset, fs):
    """(B, 4) (cx, cy, w, h) normalised, from the flat cell index (B,) of an fs x fs map and that cell's size and
    offset (B, 2). Always float32: under fp16/bf16 autocast, cell + offset would lose up to 1/32 of a cell."""
    idx = idx.unsqueeze(1)
    idx_y = torch.div(idx, fs, rounding_mode="floor")
    idx_x = idx % fs
    offset, size = offset.float(), size.float()
    cx = (idx_x.to(torch.float32) + offset[:, :1]) / fs
    cy = (idx_y.to(torch.float32) + offset[:, 1:]) / fs
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

    def score(self, x):
        """The score map alone (B, 1, fs, fs), as :meth:`forward` computes it."""
        return torch.clamp(self._branch("ctr", x).sigmoid(), min=1e-4, max=1 - 1e-4)

    def size_offset_at(self, x, idx):
        """Size and offset (B, 2) each at the flat cell ``idx`` (B,) of ``x`` (B, C, fs, fs): the values of
        :meth:`forward`'s maps there, from the cell's 9x9 neighbourhood only (four 3x3 convolutions see 9x9).

        Each convolution runs unpadded on a shrinking window (9 -> 7 -> 5 -> 3 -> 1); positions outside the map
        are zeroed after every layer, which is what the full maps' zero padding feeds the next layer. A tracker
        needs these two maps at one cell only: the same sums (up to float rounding) for a third of the head's work.
        """
        b, c, fs, _ = x.shape
        reach = 4
        padded = nn.functional.pad(x, (reach,) * 4)
        row = torch.div(idx, fs, rounding_mode="floor")
        col = idx % fs
        offsets = torch.arange(-reach, reach + 1, device=x.device)
        rows = row.view(b, 1, 1) + offsets.view(1, -1, 1)            # (B, 9, 1) map rows of the window
        cols = col.view(b, 1, 1) + offsets.view(1, 1, -1)            # (B, 1, 9)
        flat = ((rows + reach) * (fs + 2 * reach) + cols + reach).reshape(b, 1, -1).expand(b, c, -1)
        window = padded.flatten(2).gather(2, flat).view(b, c, 2 * reach + 1, 2 * reach + 1)
        inside = ((rows >= 0) & (rows < fs) & (cols >= 0) & (cols < fs)).unsqueeze(1).to(x.dtype)  # (B,1,9,9)
        out = {}
        for name in ("size", "offset"):
            y = window
            for i in range(1, 5):
                conv, bn, relu = getattr(self, f"conv{i}_{name}")
                y = relu(bn(nn.functional.conv2d(y, conv.weight, conv.bias)))
                y = y * inside[:, :, i:-i, i:-i]
            out[name] = getattr(self, f"conv5_{name}")(y).flatten(1)  # (B, 2)
        return out["size"].sigmoid(), out["offset"]

    def forward(self, x):
        """Features (B, C, fs, fs) -> (score_map (B,1,fs,fs), size_map (B,2,fs,fs), offset_map (B,2,fs,fs))."""
        score = self.score(x)
        size = self._branch("size", x).sigmoid()
        offset = self._branch("offset", x)
        return score, size, offset
