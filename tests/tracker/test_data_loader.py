"""The training DataLoader: determinism per (seed, epoch, index), ranks, LMDB parity, corrupt frames."""

import os

import pytest
import torch

from mimtrack.errors import UserError
from mimtrack.tracker.config import TrackerConfig, TrainDataset
from mimtrack.tracker.data import build_train_loader
from mimtrack.tracker.data.lmdb_pack import pack_lmdb
from mimtrack.tracker.data.loader import build_pair_dataset
from mimtrack.tracker.data.registry import build_source
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
