"""Submission zips for the GOT-10k and TrackingNet servers: round trips and refusals."""

import zipfile

import numpy as np
import pytest

from mimtrack.evaluation.datasets import load_dataset
from mimtrack.evaluation.submit import pack_got10k, pack_trackingnet
from mimtrack.cli import main
from mimtrack.errors import UserError
from tests import fabricate as fab


def _read_member(archive, name):
    return np.loadtxt(archive.open(name), delimiter=",", ndmin=2)


@pytest.fixture
def got10k_test(tmp_path):
    rng = np.random.default_rng(0)
    gts = {f"GOT-10k_Test_{i:06d}": fab.random_boxes(rng, 6) for i in (1, 2)}
    fab.make_got10k(tmp_path / "got", "test", gts, frames=True)
    results = tmp_path / "res"
    for name, gt in gts.items():
        boxes = gt + rng.normal(0, 1, gt.shape)
        boxes[0] = gt[0]
        fab.write_table(str(results / name / f"{name}_001.txt"), boxes)
        fab.write_table(str(results / name / f"{name}_time.txt"), rng.uniform(0.01, 0.02, (6, 1)))
    return tmp_path, gts


def test_got10k_round_trip_via_cli(got10k_test, capsys):
    root, gts = got10k_test
    out = root / "sub.zip"
    assert main(["pack", "--dataset", "got10k", "--root", str(root / "got"), "--results", str(root / "res"),
                 "--out", str(out)]) == 0
    with zipfile.ZipFile(out) as archive:
        names = sorted(archive.namelist())
        assert names == sorted(f"{n}/{n}_{kind}.txt" for n in gts for kind in ("001", "time"))
        for name, gt in gts.items():
            expected = np.loadtxt(root / "res" / name / f"{name}_001.txt", delimiter=",")
            packed = _read_member(archive, f"{name}/{name}_001.txt")
            assert packed.shape == (6, 4) and np.allclose(packed, expected, atol=5e-5)
            assert np.allclose(packed[0], gt[0])  # row 1 = the initial box
            assert _read_member(archive, f"{name}/{name}_time.txt").shape == (6, 1)


def test_got10k_refuses_missing_and_short_results(got10k_test):
    root, gts = got10k_test
    first, second = list(gts)
    (root / "res" / first / f"{first}_001.txt").write_text("1,2,3,4\n")
    for f in (root / "res" / second).iterdir():
        f.unlink()
    sequences = load_dataset("got10k", root / "got", "test")
    with pytest.raises(UserError) as exc:
        pack_got10k(str(root / "res"), str(root / "sub.zip"), sequences)
    message = str(exc.value)
    assert f"{first}_001.txt: 1 rows for 6 frames" in message and f"{second}: no results" in message
    assert "\n" not in message
    assert not (root / "sub.zip").exists()


def test_trackingnet_round_trip_and_refusal(tmp_path):
    rng = np.random.default_rng(1)
    gts = {"abc_0": fab.random_boxes(rng, 5), "xyz_1": fab.random_boxes(rng, 7)}
    fab.make_trackingnet(tmp_path / "tn", "TEST", gts, frames=True)
    for name, gt in gts.items():
        fab.write_table(str(tmp_path / "res" / f"{name}.txt"), gt + 0.25)
    sequences = load_dataset("trackingnet", tmp_path / "tn", "test")
    members = pack_trackingnet(str(tmp_path / "res"), str(tmp_path / "tn.zip"), sequences)
    assert sorted(members) == ["abc_0.txt", "xyz_1.txt"]
    with zipfile.ZipFile(tmp_path / "tn.zip") as archive:
        for name, gt in gts.items():
            packed = _read_member(archive, f"{name}.txt")
            assert packed.shape == (len(gt), 4)
            assert np.allclose(packed[1:], gt[1:] + 0.25) and np.allclose(packed[0], gt[0])
    (tmp_path / "res" / "xyz_1.txt").unlink()
    with pytest.raises(UserError, match="xyz_1: no results"):
        pack_trackingnet(str(tmp_path / "res"), str(tmp_path / "tn2.zip"), sequences)
    assert not (tmp_path / "tn2.zip").exists()
