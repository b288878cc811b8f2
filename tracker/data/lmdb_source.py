"""The training source that reads an LMDB written by ``mimtrack pack-lmdb`` (:mod:`.lmdb_pack` has the layout)."""

import json
import os

import numpy as np

from mimtrack.errors import UserError
from mimtrack.lmdbfile import open_lmdb

from .sources import Source, TrainSequence

FORMAT = "mimtrack-lmdb-1"


def _reader(path):
    return open_lmdb(path, "training LMDB")


class LmdbSource(Source):
    """The sequences of an LMDB made by :func:`pack_lmdb`. Each process (DataLoader workers included) opens the
    file on its first read; no environment crosses a fork."""

    def __init__(self, path, dataset, split=""):
        self.path = os.fspath(path)
        if not os.path.isfile(self.path):
            raise UserError(f"{self.path}: LMDB file not found (make one with 'mimtrack pack-lmdb')")
        _reader(self.path)   # UserError for a missing, foreign or truncated file
        try:
            meta = json.loads(self._get(b"__meta__"))
            boxes = np.frombuffer(self._get(b"__boxes__"), dtype=np.float64).reshape(-1, 4)
            visible = np.frombuffer(self._get(b"__visible__"), dtype=np.uint8).astype(bool)
        except Exception as exc:   # lmdb.Error, missing records, bad JSON
            raise UserError(f"{self.path}: not a mimtrack training LMDB ({type(exc).__name__}: {exc})") from None
        if not isinstance(meta, dict) or meta.get("format") != FORMAT:
            found = meta.get("format") if isinstance(meta, dict) else None
            raise UserError(f"{self.path}: not a mimtrack training LMDB (format {found!r})")
        total = sum(meta.get("lengths", []))
        if len(boxes) != total or len(visible) != total:
            raise UserError(f"{self.path}: corrupt training LMDB ({len(boxes)} boxes, {len(visible)} visibility "
                            f"flags for {total} frames)")
        if meta["dataset"] != dataset:
            raise UserError(f"{self.path}: holds {meta['dataset']!r}, but the recipe names {dataset!r}")
        self.name, self.is_video = dataset, meta["is_video"]
        starts = np.concatenate([[0], np.cumsum(meta["lengths"])])
        wanted = self._split_members(meta, split)
        self.sequences = []
        for index, name in enumerate(meta["names"]):
            if wanted is not None and name not in wanted:
                continue
            a, b = starts[index], starts[index + 1]
            frames = [f"{index}/{k}" for k in range(b - a)] if self.is_video else meta["image_keys"][a:b]
            self.sequences.append(TrainSequence(name, boxes[a:b], visible[a:b], frames))
        if not self.sequences:
            raise UserError(f"{self.path}: no {dataset} {split} sequences in this LMDB (packed: {meta['split']})")

    def _split_members(self, meta, split):
        """Names of ``split`` when it differs from the packed one (e.g. vottrain from a train_full pack)."""
        if not split or split == meta["split"]:
            return None
        if self.name not in ("lasot", "got10k"):
            raise UserError(f"{self.path}: packed split {meta['split']!r}, the recipe asks for {split!r}")
        from mimtrack.evaluation.datasets import split_names

        return set(split_names(self.name, split))

    def _get(self, key):
        with _reader(self.path).begin() as txn:
            return txn.get(key)

    def read(self, key):
        return self._get(key.encode())
