"""Benchmark readers: fabricated official layouts round-trip, split facts, errors, and parity
with the got10k toolkit's own readers where it has one."""

import json
import os

import numpy as np
import pytest

from mimtrack.evaluation.datasets import dataset_names, default_split, load_dataset, split_names
from mimtrack.evaluation.datasets.uav import sequence_table
from mimtrack.errors import UserError
from tests import fabricate as fb


@pytest.fixture
def rng():
    return np.random.default_rng(0)


def boxes(rng, n):
    return fb.random_boxes(rng, n)


# ---------------------------------------------------------------- registry and split facts
def test_registry_names_and_errors(tmp_path):
    assert dataset_names() == ["lasot", "lasot_ext", "got10k", "trackingnet", "otb", "uav123", "uav20l",
                               "nfs", "tnl2k", "vot"]
    assert default_split("lasot") == "test" and default_split("got10k") == "val"
    with pytest.raises(UserError, match="unknown dataset 'lasott'.*lasot, lasot_ext"):
        load_dataset("lasott", tmp_path)
    with pytest.raises(UserError, match="nowhere: lasot root folder not found"):
        load_dataset("lasot", tmp_path / "nowhere")
    with pytest.raises(UserError, match="unknown split 'val'"):
        load_dataset("lasot", tmp_path, split="val")
    with pytest.raises(UserError, match="no lasot test sequences found"):
        load_dataset("lasot", tmp_path)
    with pytest.raises(UserError, match="give the dataset root"):
        split_names("tnl2k")


def test_split_sizes_match_the_reference_lists(shared_dir):
    splits = shared_dir / "reference" / "splits"
    lasot_test = split_names("lasot", "test")
    # The reference file has 279 newlines (no final one) but 280 names.
    assert lasot_test == (splits / "lasot_test_split.txt").read_text().split() and len(lasot_test) == 280
    assert len(split_names("lasot", "train")) == 1120
    assert sorted(split_names("lasot", "all")) == sorted(lasot_test + split_names("lasot", "train"))
    assert len(split_names("lasot_ext")) == 150
    sizes = {"train_full": 9335, "vottrain": 7086, "votval": 1249, "ltrtrain": 7934, "ltrval": 1401,
             "vot_exclude": 1000, "val": 180, "test": 180, "train": 9335}
    for split, size in sizes.items():
        names = split_names("got10k", split)
        assert len(names) == len(set(names)) == size, split
    assert split_names("got10k", "train_full")[0] == "GOT-10k_Train_003785"  # index 3784: list.txt row 3785
    assert len(split_names("uav123")) == 123 and len(split_names("uav20l")) == 20
    assert len(split_names("otb")) == 100


def test_got10k_vot_splits_exclude_the_vot_list_shifted_by_one(shared_dir):
    """Fact of the shared files: the indices missing from vottrain+votval equal the NUMBERS of the
    1000 VOT-excluded names, but index i is list.txt row i+1 (GOT-10k_Train_{i+1}), so the
    trainer-side VOT splits are off by one from the names they meant to exclude."""
    excluded = set(split_names("got10k", "vot_exclude"))
    kept = set(split_names("got10k", "vottrain")) | set(split_names("got10k", "votval"))
    dropped = set(split_names("got10k", "train")) - kept
    assert len(dropped) == 1000
    assert {int(n[-6:]) - 1 for n in dropped} == {int(n[-6:]) for n in excluded}
    assert set(split_names("got10k", "ltrtrain")) | set(split_names("got10k", "ltrval")) == set(
        split_names("got10k", "train"))


def test_packaged_lists_match_the_got10k_toolkit():
    got10k = pytest.importorskip("got10k.datasets")
    package = os.path.dirname(got10k.__file__)
    with open(os.path.join(package, "uav123.json")) as f:
        reference = json.load(f)
    for subset in ("UAV123", "UAV20L"):
        expected = {k: (v["folder_name"], v["start_frame"], v["end_frame"]) for k, v in reference[subset].items()}
        assert sequence_table(subset) == expected
    with open(os.path.join(package, "lasot.json")) as f:
        lasot = json.load(f)
    assert sorted(split_names("lasot", "test")) == sorted(lasot["test"])
    assert sorted(split_names("lasot", "train")) == sorted(lasot["train"])
    tb100 = got10k.OTB._OTB__tb100_seqs
    two_targets = {f"{s}.{k}" for s in ("Jogging", "Skating2") for k in (1, 2)}
    assert set(split_names("otb")) == (set(tb100) - {"Jogging", "Skating2"}) | two_targets


# ---------------------------------------------------------------- LaSOT / LaSOT-ext
def test_lasot_round_trip_visibility_language_attributes(tmp_path, rng):
    gt = boxes(rng, 6)
    gt[2] = [0.5, 1.25, 10.125, 7.0]
    fb.make_lasot(tmp_path, {
        "airplane-1": dict(gt=gt, full_occlusion=[0, 1, 0, 0, 0, 0], out_of_view=[0, 0, 0, 1, 1, 0], nlp="white plane"),
        "zebra-17": dict(gt=boxes(rng, 3)),
        "airplane-13": dict(gt=boxes(rng, 4)),
    })
    (tmp_path / "annos" / "att").mkdir(parents=True)
    (tmp_path / "annos" / "att" / "airplane-1.txt").write_text("0,0,0,0,0,0,0,0,1,1,0,0,0,1\n")
    seqs = load_dataset("lasot", tmp_path)
    assert [s.name for s in seqs] == ["airplane-1", "airplane-13", "zebra-17"]  # official list order
    first = seqs[0]
    assert first.dataset == "lasot" and first.info["category"] == "airplane"
    np.testing.assert_array_equal(first.ground_truth, gt)
    assert first.ground_truth.dtype == np.float64
    np.testing.assert_array_equal(first.visible, [True, False, True, False, False, True])
    np.testing.assert_array_equal(first.labels["out_of_view"], [0, 0, 0, 1, 1, 0])
    assert first.language == "white plane"
    assert first.attributes == ("SV", "FOC", "ARC")
    assert seqs[1].attributes == ()
    assert first.frames[0] == os.path.join(str(tmp_path), "airplane", "airplane-1", "img", "00000001.jpg")
    assert len(first.frames) == 6 and not os.path.exists(first.frames[0])  # frames absent: still loads
    # only the requested ones; names outside the root or the dataset are errors
    assert [s.name for s in load_dataset("lasot", tmp_path, sequences=["zebra-17"])] == ["zebra-17"]
    with pytest.raises(UserError, match="not found under .*: airplane-2, nonsense-1"):
        load_dataset("lasot", tmp_path, sequences=["airplane-2", "zebra-17", "nonsense-1"])
    assert [s.name for s in load_dataset("lasot", tmp_path, split="all")] == ["airplane-1", "airplane-13",
                                                                             "zebra-17"]


def test_lasot_frames_written_exist(tmp_path, rng):
    fb.make_lasot(tmp_path, {"airplane-10": dict(gt=boxes(rng, 3))}, frames=True)
    (seq,) = load_dataset("lasot", tmp_path, split="train")
    assert all(os.path.isfile(p) for p in seq.frames)


def test_lasot_errors_name_the_file(tmp_path, rng):
    fb.make_lasot(tmp_path, {"bear-2": dict(gt=boxes(rng, 3))})
    gt_path = tmp_path / "bear" / "bear-2" / "groundtruth.txt"
    gt_path.write_text("1,2,3,4\n1,2,3\n5,6,7,8\n")
    with pytest.raises(UserError, match=r"groundtruth.txt: line 2: expected 4 numbers, found 3"):
        load_dataset("lasot", tmp_path)
    gt_path.write_text("1,2,3,4\n1,2,3,4\n")
    with pytest.raises(UserError, match=r"full_occlusion.txt: 3 labels for 2 ground-truth rows"):
        load_dataset("lasot", tmp_path)
    gt_path.unlink()
    with pytest.raises(UserError, match=r"bear-2.groundtruth.txt: file not found"):
        load_dataset("lasot", tmp_path)


def test_lasot_ext(tmp_path, rng):
    fb.make_lasot_ext(tmp_path, {"wingsuit-10": dict(gt=boxes(rng, 2)), "atv-1": dict(gt=boxes(rng, 3))})
    fb.make_lasot(tmp_path, {"airplane-1": dict(gt=boxes(rng, 2))})  # a LaSOT sequence is not lasot_ext
    seqs = load_dataset("lasot_ext", tmp_path)
    assert [(s.name, len(s), s.dataset) for s in seqs] == [("atv-1", 3, "lasot_ext"), ("wingsuit-10", 2, "lasot_ext")]


# ---------------------------------------------------------------- GOT-10k
def test_got10k_val_labels_meta_and_toolkit_parity(tmp_path, rng):
    gt = boxes(rng, 5)
    fb.make_got10k(tmp_path, "val", {
        "GOT-10k_Val_000002": dict(gt=gt, absence=[0, 0, 1, 0, 0], cover=[8, 3, 0, 0, 5], cut_by_image=[0, 1, 0, 0, 0],
                                   resolution=(1280, 720), object_class="zebra"),
        "GOT-10k_Val_000001": dict(gt=boxes(rng, 4)),
    }, frames=True)
    seqs = load_dataset("got10k", tmp_path)
    assert [s.name for s in seqs] == ["GOT-10k_Val_000001", "GOT-10k_Val_000002"]
    seq = seqs[1]
    np.testing.assert_array_equal(seq.ground_truth, gt)
    np.testing.assert_array_equal(seq.visible, [True, True, False, False, True])
    np.testing.assert_array_equal(seq.labels["cut_by_image"], [0, 1, 0, 0, 0])
    assert seq.info["resolution"] == (1280, 720) and seq.info["object_class"] == "zebra"
    assert seq.info["anno_fps"] == "10Hz"
    got10k = pytest.importorskip("got10k.datasets")
    reference = got10k.GOT10k(str(tmp_path), subset="val", return_meta=True)
    for ours in seqs:
        img_files, anno, meta = reference[ours.name]
        np.testing.assert_allclose(ours.ground_truth, anno, rtol=0, atol=1e-12)
        assert list(ours.frames) == img_files
        np.testing.assert_array_equal(ours.labels["cover"], meta["cover"])


def test_got10k_test_first_frame_only_and_index_splits(tmp_path, rng):
    fb.make_got10k(tmp_path, "test", {"GOT-10k_Test_000007": dict(gt=boxes(rng, 5))}, frames=True)
    (seq,) = load_dataset("got10k", tmp_path, split="test")
    assert seq.ground_truth.shape == (1, 4) and seq.visible is None and seq.info["first_frame_only"]
    assert len(seq.frames) == 5 and seq.frames[4].endswith("00000005.jpg")
    # trainer-side splits pick train/ folders by index (index 0 = GOT-10k_Train_000001)
    ltrval_first = split_names("got10k", "ltrval")[0]
    train = {ltrval_first: boxes(rng, 3), "GOT-10k_Train_003785": boxes(rng, 2)}
    fb.make_got10k(tmp_path, "train", train)
    assert [s.name for s in load_dataset("got10k", tmp_path, split="ltrval")] == [ltrval_first]
    assert [s.name for s in load_dataset("got10k", tmp_path, split="train_full")][0] == "GOT-10k_Train_003785"
    assert len(load_dataset("got10k", tmp_path, split="train")) == 2
    with pytest.raises(UserError, match="val: GOT-10k split folder not found"):
        load_dataset("got10k", tmp_path, split="val")


def test_got10k_bad_resolution(tmp_path, rng):
    fb.make_got10k(tmp_path, "val", {"GOT-10k_Val_000003": dict(gt=boxes(rng, 2))})
    meta = tmp_path / "val" / "GOT-10k_Val_000003" / "meta_info.ini"
    meta.write_text(meta.read_text().replace("resolution: (64, 48)", "resolution: 64x48"))
    with pytest.raises(UserError, match="meta_info.ini: resolution '64x48'"):
        load_dataset("got10k", tmp_path)


# ---------------------------------------------------------------- TrackingNet
def test_trackingnet_chunks_and_numeric_frame_order(tmp_path, rng):
    gt = boxes(rng, 12)
    fb.make_trackingnet(tmp_path, "TEST", {"vidB_0": gt, "vidA_1": boxes(rng, 3)}, frames=True)
    fb.make_trackingnet(tmp_path, "TRAIN_0", {"t0_0": boxes(rng, 4)})
    fb.make_trackingnet(tmp_path, "TRAIN_3", {"t3_0": boxes(rng, 2)})
    test = load_dataset("trackingnet", tmp_path)
    assert [s.name for s in test] == ["vidA_1", "vidB_0"]
    seq = test[1]
    np.testing.assert_array_equal(seq.ground_truth, gt[:1])
    names = [os.path.basename(p) for p in seq.frames]
    assert names == [f"{k}.jpg" for k in range(12)]  # 10.jpg after 9.jpg
    train = load_dataset("trackingnet", tmp_path, split="train")
    assert [(s.name, s.info["chunk"], len(s)) for s in train] == [("t0_0", "TRAIN_0", 4), ("t3_0", "TRAIN_3", 2)]
    assert train[0].frames[3].endswith(os.path.join("TRAIN_0", "frames", "t0_0", "3.jpg"))
    assert [s.name for s in load_dataset("trackingnet", tmp_path, split="TRAIN_3,TEST")] == ["t3_0", "vidA_1",
                                                                                             "vidB_0"]
    with pytest.raises(UserError, match="unknown split 'TRAIN_12'"):
        load_dataset("trackingnet", tmp_path, split="TRAIN_12")


# ---------------------------------------------------------------- OTB
def test_otb_delimiters_two_targets_ranges(tmp_path, rng):
    gt_basket = boxes(rng, 5)
    fb.make_otb(tmp_path, {"Basketball": gt_basket, "Jogging.1": boxes(rng, 4), "Jogging.2": boxes(rng, 4),
                           "Human4": boxes(rng, 3)}, delimiter=",")
    fb.make_otb(tmp_path, {"David": boxes(rng, 471), "Board": boxes(rng, 2)}, delimiter="\t")
    fb.make_otb(tmp_path, {"BlurCar1": boxes(rng, 742), "MyOwn": boxes(rng, 2)}, delimiter=" ")
    (tmp_path / "notes").mkdir()  # an unknown folder without annotations is not a sequence
    seqs = {s.name: s for s in load_dataset("otb", tmp_path)}
    assert list(seqs) == ["Basketball", "BlurCar1", "Board", "David", "Human4", "Jogging.1", "Jogging.2", "MyOwn"]
    np.testing.assert_array_equal(seqs["Basketball"].ground_truth, gt_basket)
    assert seqs["Jogging.2"].frames[0].endswith(os.path.join("Jogging", "img", "0001.jpg"))
    assert len(seqs["Human4"]) == 3
    david = seqs["David"]
    assert len(david.frames) == 471 and david.frames[0].endswith("0300.jpg") and david.frames[-1].endswith("0770.jpg")
    assert seqs["BlurCar1"].frames[0].endswith("0247.jpg") and seqs["BlurCar1"].frames[-1].endswith("0988.jpg")
    assert seqs["Board"].frames[1].endswith(os.path.join("Board", "img", "00002.jpg"))
    # wrong row count for a ranged sequence; a known folder without its annotation file
    (tmp_path / "David" / "groundtruth_rect.txt").write_text("1,2,3,4\n")
    with pytest.raises(UserError, match=r"groundtruth_rect.txt: 1 rows, but David frames 300-770 need 471"):
        load_dataset("otb", tmp_path, sequences=["David"])
    (tmp_path / "Crossing").mkdir()
    with pytest.raises(UserError, match=r"Crossing.groundtruth_rect.txt: file not found"):
        load_dataset("otb", tmp_path)


def test_otb_frames_for_ranges(tmp_path, rng):
    fb.make_otb(tmp_path, {"BlurCar3": boxes(rng, 357), "Jogging.1": boxes(rng, 2), "Jogging.2": boxes(rng, 2)},
                frames=True)
    for seq in load_dataset("otb", tmp_path):
        assert all(os.path.isfile(p) for p in seq.frames), seq.name


def test_otb_real_crossing(shared_dir):
    (seq,) = load_dataset("otb", shared_dir / "data" / "otb", sequences=["Crossing"])
    assert len(seq) == 120 and len(seq.frames) == 120
    np.testing.assert_array_equal(seq.ground_truth[0], [205, 151, 17, 50])
    assert all(os.path.isfile(p) for p in seq.frames)


# ---------------------------------------------------------------- UAV123 / UAV20L
def test_uav123_nan_rows_ranges_attributes(tmp_path, rng):
    gt = boxes(rng, 703)
    gt[5:9] = np.nan
    fb.make_uav123(tmp_path, {"bird1_2": gt, "bike3": boxes(rng, 433)})
    (tmp_path / "anno" / "UAV123" / "att").mkdir()
    (tmp_path / "anno" / "UAV123" / "att" / "bike3.txt").write_text("1,0,0,0,0,1,0,0,0,0,0,1\n")
    seqs = load_dataset("uav123", tmp_path)
    assert [s.name for s in seqs] == ["bike3", "bird1_2"]  # table order
    bird = seqs[1]
    np.testing.assert_array_equal(bird.ground_truth, gt)  # NaN rows stay NaN
    assert np.isnan(bird.ground_truth[5:9]).all() and bird.visible is None
    assert bird.frames[0].endswith(os.path.join("data_seq", "UAV123", "bird1", "000775.jpg"))
    assert bird.frames[-1].endswith("001477.jpg")
    assert seqs[0].attributes == ("SV", "POC", "SOB")
    (tmp_path / "anno" / "UAV123" / "bike3.txt").write_text("1,2,3,4\n")
    with pytest.raises(UserError, match=r"bike3.txt: 1 rows, but bike3 is frames 1-433"):
        load_dataset("uav123", tmp_path)


def test_uav20l_with_frames(tmp_path, rng):
    folder, start, stop = sequence_table("UAV20L")["group1"]
    fb.make_uav123(tmp_path, {"group1": boxes(rng, stop - start + 1)}, subset="UAV20L")
    (seq,) = load_dataset("uav20l", tmp_path)
    assert seq.dataset == "uav20l" and len(seq.frames) == stop - start + 1
    with pytest.raises(UserError, match=r"anno.UAV123: UAV123 annotation folder not found"):
        load_dataset("uav123", tmp_path)
    fb.make_uav123(tmp_path / "small", {"bike2": boxes(rng, 553)}, frames=True)
    (seq,) = load_dataset("uav123", tmp_path / "small")
    assert all(os.path.isfile(p) for p in seq.frames)


# ---------------------------------------------------------------- NfS
@pytest.mark.parametrize("frames", [False, True])
def test_nfs_layouts_agree_and_240fps_rows_are_thinned(tmp_path, rng, frames):
    gts = {"Gymnastics": boxes(rng, 6), "ball_1": boxes(rng, 5)}
    fb.make_nfs(tmp_path / "official", {"Gymnastics": gts["Gymnastics"], "ball_1": dict(gt=gts["ball_1"], fps240=True)},
                frames=frames)
    fb.make_nfs(tmp_path / "pyt", gts, layout="pytracking", frames=frames)
    for layout in ("official", "pyt"):
        seqs = load_dataset("nfs", tmp_path / layout)
        assert [s.name for s in seqs] == ["Gymnastics", "ball_1"], layout
        for seq in seqs:
            np.testing.assert_allclose(seq.ground_truth, gts[seq.name], rtol=0, atol=1e-9)
            assert len(seq.frames) == len(gts[seq.name])
            assert all(os.path.isfile(p) for p in seq.frames) == frames
    if frames:  # the got10k toolkit reads the official layout the same way
        got10k = pytest.importorskip("got10k.datasets")
        reference = got10k.NfS(str(tmp_path / "official"), fps=30)
        for seq in load_dataset("nfs", tmp_path / "official"):
            img_files, anno = reference[seq.name]
            np.testing.assert_allclose(seq.ground_truth, anno, rtol=0, atol=1e-12)
            assert list(seq.frames) == img_files


def test_nfs_missing_annotation(tmp_path, rng):
    fb.make_nfs(tmp_path, {"car": boxes(rng, 3)}, layout="pytracking")
    (tmp_path / "sequences" / "dog").mkdir(parents=True)
    with pytest.raises(UserError, match=r"nfs_dog.txt: file not found"):
        load_dataset("nfs", tmp_path)


# ---------------------------------------------------------------- TNL2K
def test_tnl2k_language_and_lexical_frames(tmp_path, rng):
    gt = boxes(rng, 3)
    fb.make_tnl2k(tmp_path, {"test_015_Sord_video_Q01_done": dict(gt=gt, language="the sword"),
                             "advSamp_Baseball": boxes(rng, 2)}, frames=True)
    pngs = tmp_path / "advSamp_Baseball" / "imgs"
    for jpg in sorted(pngs.iterdir()):
        jpg.rename(jpg.with_suffix(".png"))
    seqs = load_dataset("tnl2k", tmp_path)
    assert [s.name for s in seqs] == ["advSamp_Baseball", "test_015_Sord_video_Q01_done"]
    assert [os.path.basename(p) for p in seqs[0].frames] == ["00001.png", "00002.png"]
    np.testing.assert_array_equal(seqs[1].ground_truth, gt)
    assert seqs[1].language == "the sword" and len(seqs[1].frames) == 3
    assert split_names("tnl2k", root=tmp_path) == ["advSamp_Baseball", "test_015_Sord_video_Q01_done"]
    (tmp_path / "broken" / "imgs").mkdir(parents=True)
    with pytest.raises(UserError, match=r"broken.groundtruth.txt: file not found"):
        load_dataset("tnl2k", tmp_path)
