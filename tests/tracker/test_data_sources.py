"""Training sources: official layouts through evaluation.datasets, COCO, custom folders, LMDB, locations."""

import json
import os

import cv2
import numpy as np
import pytest

from mimtrack.evaluation.datasets._common import split_file
from mimtrack import cli
from mimtrack.errors import UserError
from tests import fabricate
from mimtrack.tracker.data.lmdb_pack import pack_lmdb
from mimtrack.tracker.data.lmdb_source import LmdbSource
from mimtrack.tracker.data.locations import location_of, resolve_locations
from mimtrack.tracker.data.registry import build_source
from mimtrack.tracker.data.sources import decode_frame
from mimtrack.tracker.data.synthetic import make_synthetic


@pytest.fixture(scope="module")
def datasets(tmp_path_factory):
    root = tmp_path_factory.mktemp("data")
    make_synthetic("got10k", root / "got10k", sequences=3, frames=40, size=(96, 72), seed=1)
    make_synthetic("lasot", root / "lasot", sequences=2, frames=40, size=(96, 72), seed=2)
    make_synthetic("coco", root / "coco", sequences=6, size=(96, 72), seed=3)
    return root


def test_benchmark_visibility_rules(tmp_path):
    n = 6
    gt = np.tile([5.0, 5.0, 10.0, 10.0], (n, 1))
    gt[5, 2] = 0                                                   # zero width: never visible
    fabricate.make_lasot(tmp_path / "lasot", {"airplane-10": {"gt": gt, "full_occlusion": [0, 1, 0, 0, 0, 0],
                                                             "out_of_view": [0, 0, 1, 0, 0, 0]}})
    fabricate.make_got10k(tmp_path / "got", "train", {"GOT-10k_Train_000001": {
        "gt": gt, "absence": [0, 0, 0, 1, 0, 0], "cover": [8, 0, 3, 8, 1, 8]}})
    fabricate.make_trackingnet(tmp_path / "tn", "TRAIN_0", {"vid": gt})
    lasot = build_source("lasot", tmp_path / "lasot").sequence(0)
    got = build_source("got10k", tmp_path / "got", "train_full").sequence(0)
    tn = build_source("trackingnet", tmp_path / "tn").sequence(0)
    assert lasot.visible.tolist() == [True, False, False, True, True, False]
    assert got.visible.tolist() == [True, False, True, False, True, False]
    assert tn.visible.tolist() == [True] * 5 + [False]
    assert lasot.frames[0].endswith(os.path.join("airplane", "airplane-10", "img", "00000001.jpg"))


def test_coco_one_frame_sequences(datasets):
    coco = build_source("coco", datasets / "coco")
    with open(datasets / "coco" / "annotations" / "instances_train2017.json") as f:
        data = json.load(f)
    kept = [a for a in data["annotations"] if not a["iscrowd"]]
    assert len(kept) < len(data["annotations"])                    # the writer adds crowd annotations
    assert not coco.is_video and len(coco) == len(kept)
    seq = coco.sequence(3)
    assert len(seq.frames) == 1 and seq.boxes.tolist() == [kept[3]["bbox"]]
    image_id = {r["id"]: r["file_name"] for r in data["images"]}[kept[3]["image_id"]]
    assert seq.frames[0] == os.path.join(datasets / "coco", "images", "train2017", image_id)
    # The other accepted layout: <root>/train2017/ without images/.
    os.rename(datasets / "coco" / "images" / "train2017", datasets / "coco" / "train2017")
    try:
        assert build_source("coco", datasets / "coco").sequence(3).frames[0].endswith(
            os.path.join("coco", "train2017", image_id))
    finally:
        os.rename(datasets / "coco" / "train2017", datasets / "coco" / "images" / "train2017")


def _custom_sequence(folder, n, image_dir=True, ext=".png"):
    frames_dir = folder / "img" if image_dir else folder
    fabricate.write_frames([str(frames_dir / f"{k + 1}{ext}") for k in range(n)])
    fabricate.write_table(str(folder / "groundtruth.txt"), np.tile([4, 4, 20, 10], (n, 1)))


def test_custom_folder_with_and_without_visibility(tmp_path):
    _custom_sequence(tmp_path / "plain", 12)
    _custom_sequence(tmp_path / "flat", 12, image_dir=False, ext=".jpg")
    (tmp_path / "flat" / "visible.txt").write_text("\n".join(["1"] * 6 + ["0"] * 6) + "\n")
    _custom_sequence(tmp_path / "absent", 12)
    (tmp_path / "absent" / "absence.label").write_text("\n".join(["0", "1"] * 6) + "\n")
    source = build_source("custom", tmp_path)
    by_name = {source.sequence(i).name: source.sequence(i) for i in range(len(source))}
    assert sorted(by_name) == ["absent", "flat", "plain"]
    assert by_name["plain"].visible.all()
    assert by_name["flat"].visible.tolist() == [True] * 6 + [False] * 6
    assert by_name["absent"].visible.tolist() == [True, False] * 6
    # Numeric order: 2.png before 10.png.
    assert [os.path.basename(p) for p in by_name["plain"].frames[:3]] == ["1.png", "2.png", "3.png"]
    assert os.path.basename(by_name["plain"].frames[9]) == "10.png"
    # A folder that is itself one sequence.
    assert len(build_source("custom", tmp_path / "flat")) == 1


def test_bad_inputs_give_one_line_errors(tmp_path):
    _custom_sequence(tmp_path / "ok", 5)
    (tmp_path / "nogt" / "img").mkdir(parents=True)
    fabricate.write_frames([str(tmp_path / "nogt" / "img" / "1.jpg")])
    with pytest.raises(UserError, match=r"nogt.groundtruth\.txt: file not found"):
        build_source("custom", tmp_path)
    os.remove(tmp_path / "nogt" / "img" / "1.jpg")
    os.rmdir(tmp_path / "nogt" / "img")
    (tmp_path / "nogt" / "groundtruth.txt").write_text("")   # an empty sequence
    with pytest.raises(UserError, match=r"groundtruth\.txt: file is empty"):
        build_source("custom", tmp_path)
    os.remove(tmp_path / "nogt" / "groundtruth.txt")
    os.remove(tmp_path / "ok" / "img" / "5.png")
    with pytest.raises(UserError, match="4 frames .* for 5 rows"):
        build_source("custom", tmp_path)
    got = tmp_path / "got"
    fabricate.make_got10k(got, "train", {"GOT-10k_Train_000001": np.tile([1, 1, 5, 5], (8, 1))})
    os.remove(got / "train" / "GOT-10k_Train_000001" / "groundtruth.txt")
    with pytest.raises(UserError, match=r"groundtruth\.txt: file not found"):
        build_source("got10k", got)
    with pytest.raises(UserError, match="unknown training dataset 'imagenet'"):
        build_source("imagenet", tmp_path)
    with pytest.raises(UserError, match="folder not found") as error:
        build_source("lasot", tmp_path / "missing")
    assert "\n" not in str(error.value)
    with pytest.raises(UserError, match="COCO annotation file not found"):
        os.makedirs(tmp_path / "coco" / "train2017")
        build_source("coco", tmp_path / "coco")


def test_resolve_locations(tmp_path, datasets):
    paths = tmp_path / "paths.yaml"
    paths.write_text(f"lasot: {datasets / 'lasot'}\ngot10k: {tmp_path / 'nowhere'}\n")
    with pytest.raises(UserError, match="--paths .*: got10k location .*nowhere not found"):
        resolve_locations([], str(paths))
    paths.write_text(f"lasot: {datasets / 'lasot'}\ngot10k: {datasets / 'lasot'}\n")
    locations = resolve_locations([f"got10k={datasets / 'got10k'}"], str(paths))
    assert locations == {"lasot": str(datasets / "lasot"), "got10k": str(datasets / "got10k")}
    with pytest.raises(UserError, match="unknown dataset name 'imagenet'"):
        resolve_locations([f"imagenet={datasets}"], None)
    with pytest.raises(UserError, match="expected NAME=DIR"):
        resolve_locations(["lasot"], None)
    with pytest.raises(UserError, match="no location was given: add --data coco=DIR"):
        location_of("coco", locations)
    with pytest.raises(UserError, match="unknown training dataset 'vid' in the recipe"):
        location_of("vid", locations)


@pytest.mark.parametrize("name,split", [("got10k", "train_full"), ("coco", "train2017")])
def test_lmdb_round_trip(datasets, tmp_path, name, split):
    folder = build_source(name, datasets / name, split)
    out = tmp_path / f"{name}.lmdb"
    status = cli.main(["pack-lmdb", "--dataset", name, "--root", str(datasets / name), "--split", split,
                       "--out", str(out)])
    assert status == 0 and out.is_file() and not os.path.exists(f"{out}-lock")
    packed = build_source(f"{name}-lmdb", out, split)
    assert build_source(name, out, split).is_video == packed.is_video == folder.is_video   # .lmdb autodetected
    assert len(packed) == len(folder)
    for i in range(len(folder)):
        a, b = folder.sequence(i), packed.sequence(i)
        assert a.name == b.name
        np.testing.assert_array_equal(a.boxes, b.boxes)
        np.testing.assert_array_equal(a.visible, b.visible)
        for k in (0, len(a.frames) - 1):
            assert folder.read(a.frames[k]) == packed.read(b.frames[k])
    with pytest.raises(UserError, match="holds 'got10k|holds 'coco"):
        LmdbSource(out, "lasot")


def test_lmdb_selects_a_split_and_keeps_missing_frames_missing(datasets, tmp_path):
    source = build_source("got10k", datasets / "got10k", "train_full")
    first = source.sequence(0).frames[0]
    data = open(first, "rb").read()
    os.remove(first)
    try:
        missing = pack_lmdb(source, tmp_path / "g.lmdb", str(datasets / "got10k"), "train_full")
    finally:
        with open(first, "wb") as f:
            f.write(data)
    assert missing == 1
    packed = LmdbSource(tmp_path / "g.lmdb", "got10k", "train_full")
    assert packed.read(packed.sequence(0).frames[0]) is None
    assert decode_frame(packed.read(packed.sequence(0).frames[1]), "x").shape == (72, 96, 3)
    # vottrain from a train_full pack: the official membership (indices into train/list.txt order).
    vottrain = {f"GOT-10k_Train_{i + 1:06d}" for i in split_file("got10k")["vottrain"]}
    vot = LmdbSource(tmp_path / "g.lmdb", "got10k", "vottrain")
    expected = [s.name for s in packed.sequences if s.name in vottrain]
    assert 0 < len(expected) < len(packed) and [s.name for s in vot.sequences] == expected


def test_pack_lmdb_cli_errors(tmp_path, capsys):
    assert cli.main(["pack-lmdb", "--dataset", "lasot", "--root", str(tmp_path / "nope"), "--out",
                     str(tmp_path / "x.lmdb")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "nope: lasot folder not found" in err
    assert not (tmp_path / "x.lmdb").exists()


def test_corrupt_frame_bytes_raise_corrupt_frame():
    from mimtrack.tracker.data.sources import CorruptFrame

    with pytest.raises(CorruptFrame):
        decode_frame(b"not a jpeg", "f.jpg")
    ok, encoded = cv2.imencode(".png", np.zeros((4, 5, 3), np.uint8))
    assert decode_frame(encoded.tobytes(), "f.png").shape == (4, 5, 3)
