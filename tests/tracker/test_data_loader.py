"""The training DataLoader: determinism per (seed, epoch, index), ranks, LMDB parity, corrupt frames."""

import os

import numpy as np
import pytest
import torch

from mimtrack.errors import UserError
from mimtrack.tracker.config import TrackerConfig, TrainDataset
from mimtrack.tracker.data import build_train_loader
from mimtrack.tracker.data.lmdb_pack import pack_lmdb
from mimtrack.tracker.data.loader import PairDataset, build_pair_dataset
from mimtrack.tracker.data.processing import IMAGENET_MEAN, IMAGENET_STD, PairProcessor, paste_object
from mimtrack.tracker.data.sampler import PairSampler
from mimtrack.tracker.data.registry import build_source
from mimtrack.tracker.data.sources import TrainSequence
from mimtrack.tracker.data.synthetic import make_synthetic


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    root = tmp_path_factory.mktemp("train_data")
    make_synthetic("got10k", root / "got10k", sequences=3, frames=40, size=(96, 72), seed=5)
    make_synthetic("coco", root / "coco", sequences=4, size=(96, 72), seed=6)
    return root


def _cfg(workers=0, samples=16, batch=4):
    cfg = TrackerConfig()
    cfg.crop.template_size, cfg.crop.search_size = 32, 64     # small crops: fast tests
    cfg.data.train = [TrainDataset("got10k", "train_full", 1.0), TrainDataset("coco", "", 1.0)]
    cfg.data.val = [TrainDataset("got10k", "train_full", 1.0)]
    cfg.data.samples_per_epoch, cfg.data.val_samples = samples, 8
    cfg.data.num_workers, cfg.data.min_visible_frames = workers, 10
    cfg.train.batch_size = batch
    return cfg


def _locations(root):
    return {"got10k": str(root / "got10k"), "coco": str(root / "coco")}


def _batches(loader):
    return list(loader)


def _assert_same(batches_a, batches_b):
    assert len(batches_a) == len(batches_b)
    for a, b in zip(batches_a, batches_b):
        assert a.keys() == b.keys()
        for key in a:
            if torch.is_tensor(a[key]):
                assert torch.equal(a[key], b[key]), key
            else:
                assert a[key] == b[key], key


def test_batch_contract(root):
    batch = next(iter(build_train_loader(_cfg(), _locations(root))))
    assert batch["template"].shape == (4, 3, 32, 32) and batch["template"].dtype == torch.float32
    assert batch["search"].shape == (4, 3, 64, 64) and batch["search"].dtype == torch.float32
    assert batch["template_box"].shape == batch["search_box"].shape == (4, 4)
    assert batch["search_heatmap"].shape == (4, 4, 4) and batch["search_heatmap"].dtype == torch.float32
    assert batch["skipped"] == 0
    assert (batch["search_heatmap"].amax(dim=(1, 2)) == 1).all()
    # Normalised boxes: the template target fills 1 / template_factor of its crop.
    side = batch["template_box"][:, 2:].prod(dim=1).sqrt()
    assert torch.all((side > 0.4) & (side < 0.55))


def test_same_samples_whatever_the_worker_count(root):
    _assert_same(_batches(build_train_loader(_cfg(0), _locations(root))),
                 _batches(build_train_loader(_cfg(2), _locations(root))))


def test_ranks_take_disjoint_slices_and_epochs_differ(root):
    cfg = _cfg(samples=16, batch=2)
    dataset = build_pair_dataset(cfg, _locations(root))
    for rank in range(2):
        loader = build_train_loader(cfg, _locations(root), rank=rank, world_size=2)
        batches = _batches(loader)
        assert len(batches) == 4
        for b, batch in enumerate(batches):
            for j in range(2):
                index = rank + 2 * (2 * b + j)
                assert torch.equal(batch["search"][j], torch.from_numpy(dataset[index]["search"]))
    loader = build_train_loader(cfg, _locations(root))
    first = _batches(loader)
    loader.set_epoch(1)
    second = _batches(loader)
    assert not torch.equal(first[0]["search"], second[0]["search"])
    _assert_same(second, _batches(build_train_loader(cfg, _locations(root), epoch=1)))


def test_val_split_has_no_per_crop_augmentation(root):
    val = build_pair_dataset(_cfg(), _locations(root), split="val")
    assert len(val) == 8 and not val.processor.augment
    # The template is not jittered and not flipped per crop: its target sits at the crop centre (size - 1) / 2.
    for index in range(4):
        x, y, w, h = val[index]["template_box"] * 32
        assert (x + w / 2, y + h / 2) == (pytest.approx(15.5, abs=1e-4), pytest.approx(15.5, abs=1e-4))


def test_lmdb_yields_identical_samples(root, tmp_path):
    locations = {"got10k-lmdb": str(tmp_path / "g.lmdb"), "coco": str(tmp_path / "c.lmdb")}
    pack_lmdb(build_source("got10k", root / "got10k", "train_full"), locations["got10k-lmdb"],
              str(root / "got10k"), "train_full")
    pack_lmdb(build_source("coco", root / "coco"), locations["coco"], str(root / "coco"), "train2017")
    cfg = _cfg(workers=1)
    folder = _batches(build_train_loader(cfg, _locations(root)))
    cfg.data.train = [TrainDataset("got10k-lmdb", "train_full", 1.0), TrainDataset("coco", "", 1.0)]
    _assert_same(folder, _batches(build_train_loader(cfg, locations)))


def test_corrupt_frames_are_skipped_and_counted(root, tmp_path):
    make_synthetic("got10k", tmp_path / "got10k", sequences=2, frames=30, size=(96, 72), seed=7)
    folder = tmp_path / "got10k" / "train" / "GOT-10k_Train_000001"
    for k in range(1, 31, 2):
        (folder / f"{k:08d}.jpg").write_bytes(b"\xff\xd8 truncated")
    os.remove(folder / f"{2:08d}.jpg")
    cfg = _cfg(samples=16)
    cfg.data.train = [TrainDataset("got10k", "train_full", 1.0)]
    batches = _batches(build_train_loader(cfg, {"got10k": str(tmp_path / "got10k")}))
    assert len(batches) == 4
    assert sum(b["skipped"] for b in batches) > 0
    assert all(torch.isfinite(b["search"]).all() for b in batches)


def test_recipe_errors(root):
    cfg = _cfg()
    cfg.data.train = [TrainDataset("imagenet", "", 1.0)]
    with pytest.raises(UserError, match="unknown training dataset 'imagenet' in the recipe"):
        build_train_loader(cfg, _locations(root))
    cfg.data.train = [TrainDataset("lasot", "train", 1.0)]
    with pytest.raises(UserError, match="'lasot' but no location was given"):
        build_train_loader(cfg, _locations(root))
    cfg.data.train = [TrainDataset("got10k", "train_full", 1.0)]
    cfg.data.min_visible_frames = 1000
    with pytest.raises(UserError, match="got10k: no sequence has enough visible frames"):
        build_train_loader(cfg, _locations(root))
    cfg.data.val = []
    with pytest.raises(UserError, match="data.val: the recipe lists no val datasets"):
        build_train_loader(cfg, _locations(root), split="val")


class _ColourSource:
    """Two sequences of flat frames, one colour each: a search crop's colour says which sequence it came from."""

    is_video = True
    name = "colours"
    COLOURS = ((200, 30, 30), (30, 30, 200), (30, 200, 30))

    def __init__(self):
        boxes = np.tile([90.0, 90.0, 24.0, 18.0], (30, 1))   # the crops stay inside the frame
        self.sequences = [TrainSequence(f"s{i}", boxes, np.ones(30, bool), [(i, k) for k in range(30)])
                          for i in range(len(self.COLOURS))]

    def __len__(self):
        return len(self.sequences)

    def sequence(self, index):
        return self.sequences[index]

    def visible_counts(self):
        return np.full(len(self), 30)

    def frame(self, key):
        return np.full((200, 200, 3), self.COLOURS[key[0]], np.uint8)


def _colour_pairs(negative_pairs, samples=48):
    cfg = _cfg()
    cfg.data.grayscale_prob, cfg.data.search_center_jitter = 0.0, 0.0
    processor = PairProcessor(cfg.data, cfg.crop, augment=False)
    dataset = PairDataset(PairSampler([_ColourSource()], [1.0], 200, 10), processor, samples, seed=3,
                          negative_pairs=negative_pairs)
    items = [dataset[i] for i in range(samples)]
    # the crops' centre pixels: equal colours give equal normalised pixels
    same = [np.allclose(s["template"][:, 16, 16], s["search"][:, 32, 32]) for s in items]
    return items, np.array(same)


def test_negative_pairs_search_another_sequence_and_say_so():
    items, same = _colour_pairs(0.0)
    assert same.all() and all(s["target_present"] == 1 and s["search_heatmap"].max() == 1 for s in items)
    items, same = _colour_pairs(1.0)
    assert not same.any()
    assert all(s["target_present"] == 0 and not s["search_heatmap"].any() for s in items)
    items, same = _colour_pairs(0.5)
    present = np.array([s["target_present"] for s in items])
    assert (present == same).all() and 0.25 < present.mean() < 0.75


def test_negative_pairs_default_off_and_batched(root):
    batch = next(iter(build_train_loader(_cfg(), _locations(root))))
    assert batch["target_present"].tolist() == [1.0] * 4
    cfg = _cfg()
    cfg.data.negative_pairs = 1.0
    batch = next(iter(build_train_loader(cfg, _locations(root))))
    assert batch["target_present"].tolist() == [0.0] * 4 and not batch["search_heatmap"].any()
    cfg.data.negative_pairs = 1.5
    with pytest.raises(UserError, match="data.negative_pairs"):
        build_pair_dataset(cfg, _locations(root))


def test_pasted_distractors_come_from_another_sequence_and_leave_the_target():
    cfg = _cfg()
    cfg.data.grayscale_prob, cfg.data.search_center_jitter, cfg.data.search_scale_jitter = 0.0, 0.0, 0.0
    processor = PairProcessor(cfg.data, cfg.crop, augment=False)
    source = _ColourSource()
    dataset = PairDataset(PairSampler([source], [1.0], 200, 10), processor, 24, seed=4, paste_distractors=1.0)
    normalised = [(np.array(c, np.float32) / 255 - IMAGENET_MEAN) / IMAGENET_STD for c in _ColourSource.COLOURS]
    for i in range(24):
        sample = dataset[i]
        search = sample["search"].transpose(1, 2, 0)
        own = next(k for k, c in enumerate(normalised) if np.allclose(search[32, 32], c, atol=1e-5))
        assert sample["target_present"] == 1 and sample["search_heatmap"].max() == 1
        # somewhere a pixel of another sequence's colour (the paste's fully opaque centre)
        others = [np.isclose(search, c, atol=1e-5).all(axis=2) for k, c in enumerate(normalised) if k != own]
        pasted = np.logical_or.reduce(others)
        assert pasted.any(), i
        x, y, w, h = (sample["search_box"] * 64).round().astype(int)
        assert pasted[y:y + h, x:x + w].mean() <= 0.1, i   # at most 10 % of the target covered


def test_paste_object_is_placed_beside_the_target_and_seeded():
    crop = np.full((64, 64, 3), 10, np.uint8)
    frame = np.full((50, 50, 3), 250, np.uint8)
    target = np.array([0.4, 0.4, 0.2, 0.2])
    results = []
    for _ in range(2):
        out = crop.copy()
        assert paste_object(out, target, frame, [5, 5, 20, 20], np.random.default_rng(9))
        results.append(out)
    assert np.array_equal(*results)
    changed = (results[0] != 10).any(axis=2)
    assert 0 < changed.sum() < 0.6 * 64 * 64 and changed[26:38, 26:38].mean() <= 0.1
    # a degenerate object (an empty box) pastes nothing
    out = crop.copy()
    assert not paste_object(out, target, frame, [5, 5, 0, 0], np.random.default_rng(9)) and np.array_equal(out, crop)
