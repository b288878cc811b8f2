"""The training / validation DataLoader: random pairs, deterministic per (seed, epoch, index).

Every item seeds its own numpy Generator from (seed, epoch, index, split), so a sample never depends on the
worker that made it, the worker count or the rank: exact resume and DDP rely on it. Each rank takes the disjoint
slice ``index = rank, rank + world_size, ...`` of the epoch's ``samples_per_epoch`` indices (DistributedSampler
semantics, drop_last); ``loader.set_epoch(e)`` moves to another epoch.

A batch is a dict: ``template`` (B, 3, T, T) and ``search`` (B, 3, S, S) float32 normalised, ``template_box``
and ``search_box`` (B, 4) x, y, w, h normalised to their crop, ``search_heatmap`` (B, S/16, S/16) float32 and
``target_present`` (B,) float32: 0 for a negative pair (``data.negative_pairs``: the search crop is from another
sequence, its heatmap all background) and ``skipped`` (int): frames found missing or corrupt while making the batch
(redrawn, never fatal).
"""

import multiprocessing

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, Sampler

from mimtrack.errors import UserError

from .locations import location_of
from .processing import PairProcessor
from .sampler import PairSampler
from .registry import build_source
from .sources import CorruptFrame

MAX_REDRAWS = 100   # consecutive invalid pairs before giving up: a dataset that broken is a user error
_SPLIT_IDS = {"train": 0, "val": 1}


class PairDataset(Dataset):
    """``samples`` random pairs; item ``index`` of epoch ``epoch`` is a pure function of (seed, epoch, index).
    ``negative_pairs``: the probability that a pair's search view is replaced by one of another sequence;
    ``paste_distractors``: the probability that another sequence's object is pasted into its search crop."""

    def __init__(self, sampler, processor, samples, seed, split="train", epoch=0, negative_pairs=0.0,
                 paste_distractors=0.0):
        self.sampler, self.processor = sampler, processor
        self.samples, self.seed, self.split, self.epoch = samples, seed, split, epoch
        self.negative_pairs, self.paste_distractors = float(negative_pairs), float(paste_distractors)

    def __len__(self):
        return self.samples

    def _search_view(self, sequence, source, template_frame, t, s, rng):
        if s == t:   # an image source: a second view of the template's own frame
            frame = template_frame if template_frame is not None else source.frame(sequence.frames[t])
            return source.search_view(frame, sequence.boxes[t], rng)
        return source.frame(sequence.frames[s]), sequence.boxes[s]

    def _other_search_view(self, source_index, sequence, rng):
        """(frame, box) of a pair drawn from a sequence other than ``sequence``: a negative pair's search view,
        centred on that sequence's object (the search holds an object, just not the template's), or the object
        to paste as a distractor."""
        for _ in range(MAX_REDRAWS):
            other_index, other, t, s = self.sampler.sample(rng)
            if (other_index, other.name) != (source_index, sequence.name):
                source = self.sampler.sources[other_index]
                return self._search_view(other, source, None, t, s, rng)
        raise UserError("data.negative_pairs / data.paste_distractors: need at least two training sequences")

    def __getitem__(self, index):
        rng = np.random.default_rng([self.seed, self.epoch, index, _SPLIT_IDS[self.split]])
        skipped = 0
        for _ in range(MAX_REDRAWS):
            source_index, sequence, t, s = self.sampler.sample(rng)
            source = self.sampler.sources[source_index]
            # drawn only when asked for, so a recipe without negatives or pastes samples exactly as before
            negative = self.negative_pairs > 0 and rng.random() < self.negative_pairs
            paste = self.paste_distractors > 0 and rng.random() < self.paste_distractors
            distractor = None
            try:
                template_frame = source.frame(sequence.frames[t])
                if negative:
                    search_frame, search_box = self._other_search_view(source_index, sequence, rng)
                else:
                    search_frame, search_box = self._search_view(sequence, source, template_frame, t, s, rng)
                if paste:
                    distractor = self._other_search_view(source_index, sequence, rng)
            except CorruptFrame:
                skipped += 1
                continue
            sample = self.processor(template_frame, sequence.boxes[t], search_frame, search_box, rng, distractor)
            if sample is not None:
                if negative:
                    sample["search_heatmap"] = np.zeros_like(sample["search_heatmap"])
                sample["target_present"] = np.float32(0.0 if negative else 1.0)
                sample["skipped"] = skipped
                return sample
        raise UserError(f"{MAX_REDRAWS} pairs in a row were unusable ({skipped} with missing or corrupt frames, "
                        "the others with invalid crops): check the training datasets")


class RankSlice(Sampler):
    """Indices rank, rank + world_size, ... of range(total), cut to the same length on every rank."""

    def __init__(self, total, rank=0, world_size=1):
        self.total, self.rank, self.world_size = total, rank, world_size

    def __iter__(self):
        return iter(range(self.rank, len(self) * self.world_size, self.world_size))

    def __len__(self):
        return self.total // self.world_size


def collate_pairs(samples):
    batch = {key: torch.from_numpy(np.stack([s[key] for s in samples]))
             for key in ("template", "search", "template_box", "search_box", "search_heatmap", "target_present")}
    batch["skipped"] = sum(s["skipped"] for s in samples)
    return batch


class PairLoader(DataLoader):
    """A DataLoader with ``set_epoch``; workers are started per epoch, so they see the new epoch."""

    def set_epoch(self, epoch):
        self.dataset.epoch = epoch


def _fork_context(num_workers):
    # Sources hold lazily listed frame lists: fork shares them with the workers without pickling.
    if num_workers > 0 and "fork" in multiprocessing.get_all_start_methods():
        return multiprocessing.get_context("fork")
    return None


def build_pair_dataset(cfg, locations, split="train", epoch=0):
    entries = cfg.data.train if split == "train" else cfg.data.val
    if not entries:
        raise UserError(f"data.{split}: the recipe lists no {split} datasets")
    sources = [build_source(e.name, location_of(e.name, locations), e.split) for e in entries]
    sampler = PairSampler(sources, [e.ratio for e in entries], cfg.data.max_gap, cfg.data.min_visible_frames)
    processor = PairProcessor(cfg.data, cfg.crop, augment=split == "train", stride=cfg.model.backbone.patch_size)
    samples = cfg.data.samples_per_epoch if split == "train" else cfg.data.val_samples
    for name in ("negative_pairs", "paste_distractors"):
        if not 0.0 <= getattr(cfg.data, name) <= 1.0:
            raise UserError(f"data.{name} = {getattr(cfg.data, name)}: must be in [0, 1]")
    train = split == "train"   # validation pairs stay plain positives
    return PairDataset(sampler, processor, samples, cfg.train.seed, split, epoch,
                       cfg.data.negative_pairs if train else 0.0, cfg.data.paste_distractors if train else 0.0)


def build_train_loader(cfg, locations, epoch=0, rank=0, world_size=1, split="train"):
    """The DataLoader of ``split`` ('train' or 'val', the latter without per-crop augmentation) for one rank."""
    dataset = build_pair_dataset(cfg, locations, split, epoch)
    workers = cfg.data.num_workers
    return PairLoader(dataset, batch_size=cfg.train.batch_size, sampler=RankSlice(len(dataset), rank, world_size),
                      num_workers=workers, collate_fn=collate_pairs, drop_last=True,
                      pin_memory=torch.cuda.is_available(), multiprocessing_context=_fork_context(workers))

