"""A tiny tracker config and a fake pair loader for the trainer tests (no tracker.data needed).

Each sample is drawn from a generator seeded by (seed, epoch, index) alone, like the real pipeline, so a resumed
epoch sees exactly the batches an uninterrupted one does.
"""

import torch
from torch.utils.data import DataLoader, Dataset

from mimtrack.tracker.config import TrackerConfig


def tiny_config(**train):
    cfg = TrackerConfig(name="tiny-test")
    b = cfg.model.backbone
    b.embed_dim, b.depth, b.num_heads, b.drop_path = 32, 2, 2, 0.1
    cfg.model.ce.locations, cfg.model.ce.keep_ratio = [1], [0.75]
    cfg.model.head.channels = 16
    cfg.crop.template_size, cfg.crop.search_size = 32, 64
    t = cfg.train
    t.epochs, t.batch_size, t.lr_drop_epoch, t.checkpoint_every = 2, 4, 1, 1
    t.ce_start_epoch, t.ce_warm_epoch = 1, 1
    for key, value in train.items():
        setattr(t, key, value)
    return cfg


class FakePairs(Dataset):
    """Random-noise crops; the search crop holds a bright square whose box and heatmap are the targets."""

    def __init__(self, cfg, epoch, size, seed=0, rank=0, world_size=1):
        self.t, self.s = cfg.crop.template_size, cfg.crop.search_size
        self.fs = self.s // cfg.model.backbone.patch_size
        self.epoch, self.seed = epoch, seed
        self.indices = list(range(rank, size, world_size))  # a disjoint slice per rank

    def __len__(self):
        return len(self.indices)

    def __getitem__(self, i):
        index = self.indices[i]
        g = torch.Generator().manual_seed(self.seed * 1_000_003 + self.epoch * 10_007 + index)
        template = torch.randn(3, self.t, self.t, generator=g)
        search = torch.randn(3, self.s, self.s, generator=g)
        w, h = (0.15 + 0.3 * torch.rand(2, generator=g)).tolist()
        x, y = (torch.rand(2, generator=g) * torch.tensor([1 - w, 1 - h])).tolist()
        px = [round(v * self.s) for v in (x, y, x + w, y + h)]
        search[:, px[1]:px[3], px[0]:px[2]] += 3.0
        cx, cy = (x + w / 2) * self.fs, (y + h / 2) * self.fs
        ys, xs = torch.meshgrid(torch.arange(self.fs), torch.arange(self.fs), indexing="ij")
        peak_x, peak_y = min(int(cx), self.fs - 1), min(int(cy), self.fs - 1)
        heatmap = torch.exp(-((xs - peak_x) ** 2 + (ys - peak_y) ** 2) / 2.0)
        return {"template": template, "search": search, "template_box": torch.tensor([0.25, 0.25, 0.5, 0.5]),
                "search_box": torch.tensor([x, y, w, h]), "search_heatmap": heatmap, "skipped": 0}


def fake_loader_factory(cfg, samples=16, rank=0, world_size=1):
    """loader_factory(epoch, split) for the Trainer: ``samples`` pairs per epoch split over the ranks."""
    def factory(epoch, split):
        seed = cfg.train.seed + (7919 if split == "val" else 0)
        data = FakePairs(cfg, epoch, samples, seed=seed, rank=rank, world_size=world_size)
        return DataLoader(data, batch_size=cfg.train.batch_size, shuffle=False, drop_last=True)
    return factory
