"""Transfer: fine-tuning / linear probing on generated folders, segmentation metrics and runs, bad input."""

import json
import math
import os

import cv2
import numpy as np
import pytest
import torch
from torch import nn

from mimtrack import cli
from mimtrack.pretrain.transfer.classify import build_classifier, build_optimizer
from mimtrack.pretrain.transfer.config import load_classify_config
from mimtrack.pretrain.transfer.segment import read_pair, segmentation_metrics, update_confusion
from mimtrack.pretrain.transfer.semantic_fpn import slide_inference

COLOURS = ("red", "green", "blue")


def make_colour_folder(root, train=12, val=5, size=36):
    """Noisy images whose dominant channel is the class: DIR/{train,val}/{red,green,blue}/*.png."""
    rng = np.random.default_rng(0)
    for split, n in (("train", train), ("val", val)):
        for c, name in enumerate(COLOURS):
            folder = root / split / name
            folder.mkdir(parents=True)
            for i in range(n):
                img = rng.integers(0, 100, (size, size, 3))
                img[..., c] += 140
                cv2.imwrite(str(folder / f"{i}.png"), img.astype(np.uint8)[..., ::-1])
    return root


def make_ade_folder(root, train=3, val=2):
    rng = np.random.default_rng(1)
    for split, n in (("training", train), ("validation", val)):
        (root / "images" / split).mkdir(parents=True)
        (root / "annotations" / split).mkdir(parents=True)
        for i in range(n):
            h, w = 40 + 6 * i, 52
            label = np.zeros((h, w), np.uint8)
            label[:, : w // 2] = 1
            label[h // 2:, w // 2:] = 3
            label[:3] = 0
            img = (label[..., None] * 50 + rng.integers(0, 40, (h, w, 3))).astype(np.uint8)
            cv2.imwrite(str(root / "images" / split / f"ADE_{i:03d}.jpg"), img)
            cv2.imwrite(str(root / "annotations" / split / f"ADE_{i:03d}.png"), label)
    return root


def run_cli(argv, capsys):
    status = cli.main(argv)
    return status, capsys.readouterr()


def test_finetune_separates_colours_then_resumes_and_linprobe_keeps_encoder(tmp_path, capsys):
    data = make_colour_folder(tmp_path / "rgb")
    out = tmp_path / "ft"
    status, _ = run_cli(["finetune", "smoke_cls", "--data", str(data), "--output", str(out), "--epochs", "3"], capsys)
    assert status == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["top1"] >= 0.9
    assert metrics["top5"] == 1.0 and metrics["val_images"] == 15 and metrics["num_classes"] == 3

    # --resume continues after the 3 finished epochs
    status, _ = run_cli(["finetune", "smoke_cls", "--data", str(data), "--output", str(out), "--epochs", "4",
                         "--resume"], capsys)
    assert status == 0
    assert [h["epoch"] for h in json.loads((out / "metrics.json").read_text())["history"]] == [1, 2, 3, 4]

    # linear probe from the fine-tuned weights: only the head moves
    lp = tmp_path / "lp"
    status, _ = run_cli(["linprobe", "smoke_cls", "--data", str(data), "--output", str(lp), "--epochs", "1",
                         "--pretrained", str(out / "last.pth"), "--set", "model.global_pool=token"], capsys)
    assert status == 0
    assert json.loads((lp / "metrics.json").read_text())["mode"] == "linprobe"
    before = torch.load(out / "last.pth", weights_only=True)["model"]
    after = torch.load(lp / "last.pth", weights_only=True)["model"]
    for key in ("backbone.blocks.0.attn.qkv.weight", "backbone.patch_embed.proj.weight", "backbone.pos_embed"):
        assert torch.equal(before[key], after[key])
    assert "head.0.running_mean" in after and after["head.1.weight"].shape == (3, 48)  # BN + linear probe head


def test_layer_decay_groups_follow_mae_lite_assignment():
    cfg = load_classify_config("smoke_cls", ["optim.layer_decay=0.5"])
    model = build_classifier(cfg, num_classes=3)
    optimizer, lr = build_optimizer(cfg, model, total_batch=8)
    assert lr == pytest.approx(3e-3)  # absolute lr of the recipe
    depth = len(model.backbone.blocks)
    group_of = {id(p): g for g in optimizer.param_groups for p in g["params"]}
    named = dict(model.named_parameters())

    def scale(name):
        return group_of[id(named[name])]["lr_scale"]

    assert scale("backbone.patch_embed.proj.weight") == pytest.approx(0.5 ** (depth + 1))
    assert scale("backbone.cls_token") == pytest.approx(0.5 ** (depth + 1))
    for i in range(depth):
        assert scale(f"backbone.blocks.{i}.mlp.fc1.weight") == pytest.approx(0.5 ** (depth - i))
    assert scale("head.weight") == scale("fc_norm.weight") == 1.0
    assert group_of[id(named["backbone.pos_embed"])]["weight_decay"] == 0.0
    assert group_of[id(named["backbone.blocks.0.norm1.weight"])]["weight_decay"] == 0.0
    assert group_of[id(named["backbone.blocks.0.attn.qkv.weight"])]["weight_decay"] == cfg.optim.weight_decay


def test_segmentation_metrics_perfect_and_hand_computed():
    perfect = segmentation_metrics(np.diag([5, 3, 7]))
    assert perfect["mIoU"] == 1.0 and perfect["pixel_accuracy"] == 1.0 and perfect["mean_accuracy"] == 1.0

    # rows = ground truth. class 0: tp 3, gt 4, pred 5 -> IoU 3/6; class 1: tp 4, gt 6, pred 5 -> IoU 4/7;
    # class 2: absent everywhere -> NaN, left out of the mean
    m = segmentation_metrics([[3, 1, 0], [2, 4, 0], [0, 0, 0]])
    assert m["mIoU"] == pytest.approx((3 / 6 + 4 / 7) / 2)
    assert m["pixel_accuracy"] == pytest.approx(7 / 10)
    assert m["mean_accuracy"] == pytest.approx((3 / 4 + 4 / 6) / 2)
    assert math.isnan(m["IoU"][2])
    # a class that is only predicted counts with IoU 0
    assert segmentation_metrics([[2, 1], [0, 0]])["mIoU"] == pytest.approx((2 / 3 + 0) / 2)


def test_confusion_ignores_255_and_reduce_zero_label(tmp_path):
    confusion = np.zeros((3, 3), np.int64)
    label = np.array([[0, 1, 255], [2, 2, 1]])
    pred = np.array([[0, 2, 1], [2, 0, 1]])
    update_confusion(confusion, label, pred, 3)
    expected = np.zeros((3, 3), np.int64)
    for g, p in [(0, 0), (1, 2), (2, 2), (2, 0), (1, 1)]:
        expected[g, p] += 1
    np.testing.assert_array_equal(confusion, expected)

    lab = np.array([[0, 1, 150]], np.uint8)
    cv2.imwrite(str(tmp_path / "a.png"), lab)
    cv2.imwrite(str(tmp_path / "a.jpg"), np.zeros((1, 3, 3), np.uint8))
    _, reduced = read_pair(str(tmp_path / "a.jpg"), str(tmp_path / "a.png"), reduce_zero_label=True)
    np.testing.assert_array_equal(reduced, [[255, 0, 149]])


@pytest.mark.parametrize("size", [(20, 45), (50, 37), (32, 32)])
def test_slide_inference_equals_whole_image_for_a_pointwise_model(size):
    torch.manual_seed(0)
    model = nn.Conv2d(3, 4, 1)  # pointwise: every window sees the same per-pixel answer
    image = torch.randn(1, 3, *size)
    with torch.no_grad():
        out = slide_inference(model, image, 4, crop=32, stride=21)
        torch.testing.assert_close(out, model(image), rtol=1e-5, atol=1e-5)


def test_segment_runs_on_ade20k_layout(tmp_path, capsys):
    data = make_ade_folder(tmp_path / "ade")
    out = tmp_path / "seg"
    status, captured = run_cli(["segment", "smoke_seg", "--data", str(data), "--output", str(out), "--iters", "3"],
                               capsys)
    assert status == 0, captured.err
    metrics = json.loads((out / "metrics.json").read_text())
    assert 0.0 <= metrics["mIoU"] <= 1.0 and 0.0 <= metrics["pixel_accuracy"] <= 1.0
    assert metrics["iters"] == 3 and len(metrics["IoU"]) == 4
    assert (out / "last.pth").is_file()


def _one_line_error(capsys, argv, needle):
    status, captured = run_cli(argv, capsys)
    assert status == 2
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and needle in lines[0], captured.err
    return lines[0]


def test_bad_classification_input_is_one_line(tmp_path, capsys):
    out = tmp_path / "out"
    base = ["finetune", "smoke_cls", "--output", str(out), "--data"]
    _one_line_error(capsys, base + [str(tmp_path / "missing")], "folder not found")
    (tmp_path / "noval" / "train" / "a").mkdir(parents=True)
    _one_line_error(capsys, base + [str(tmp_path / "noval")], "no 'val' folder")
    flat = tmp_path / "flat"
    (flat / "train").mkdir(parents=True)
    (flat / "val").mkdir()
    cv2.imwrite(str(flat / "train" / "x.png"), np.zeros((8, 8, 3), np.uint8))
    _one_line_error(capsys, base + [str(flat)], "no class subfolders")
    empty = tmp_path / "empty"
    for split in ("train", "val"):
        (empty / split / "cat").mkdir(parents=True)
    _one_line_error(capsys, base + [str(empty)], "no images")
    data = make_colour_folder(tmp_path / "rgb", train=2, val=1)
    (data / "val" / "purple").mkdir()
    cv2.imwrite(str(data / "val" / "purple" / "0.png"), np.zeros((8, 8, 3), np.uint8))
    _one_line_error(capsys, base + [str(data)], "'purple' is not in train/")
    _one_line_error(capsys, ["finetune", "no_such_recipe", "--output", str(out), "--data", str(data)],
                    "unknown config")
    assert not out.exists()  # nothing written on bad input


def test_bad_segmentation_input_is_one_line(tmp_path, capsys):
    data = make_ade_folder(tmp_path / "ade")
    os.remove(data / "annotations" / "validation" / "ADE_001.png")
    out = tmp_path / "seg"
    _one_line_error(capsys, ["segment", "smoke_seg", "--data", str(data), "--output", str(out)], "no label")
    _one_line_error(capsys, ["segment", "smoke_seg", "--data", str(tmp_path / "nope"), "--output", str(out)],
                    "folder not found")
    _one_line_error(capsys, ["segment", "smoke_seg", "--data", str(data), "--output", str(out),
                             "--set", "data.crop_size=30"], "not a multiple of the patch size")
    assert not out.exists()


def test_randaugment_posterize_at_magnitude_10_gives_black_instead_of_raising():
    """timm maps PosterizeIncreasing at magnitude 10 to 0 bits, which Pillow 13 rejects; patched: a black image."""
    from PIL import Image
    from timm.data.auto_augment import AugmentOp

    from mimtrack.pretrain.transfer.data import patch_timm_posterize

    img = Image.fromarray(np.full((8, 8, 3), 200, np.uint8))
    patch_timm_posterize()
    patch_timm_posterize()  # idempotent
    assert np.asarray(AugmentOp("PosterizeIncreasing", prob=1.0, magnitude=10)(img)).max() == 0
    kept = np.asarray(AugmentOp("PosterizeIncreasing", prob=1.0, magnitude=5)(img))  # 4 - int(2) = 2 bits: 200 -> 192
    assert (kept == 192).all()


def test_loader_workers_leave_stop_signals_to_the_main_process(tmp_path):
    """A process-group SIGTERM (timeout, Ctrl-C, schedulers) must not kill workers under the stopping trainer."""
    import signal

    from mimtrack.stopping import worker_ignores_stop_signals

    previous = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        worker_ignores_stop_signals(0)
        assert signal.getsignal(signal.SIGTERM) == signal.SIG_IGN == signal.getsignal(signal.SIGINT)
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)


def test_classification_stopped_mid_epoch_resumes_at_its_step(tmp_path, capsys, monkeypatch):
    from mimtrack.pretrain.transfer import classify

    data = make_colour_folder(tmp_path / "rgb")
    out = tmp_path / "ft"
    calls, decide = {"n": 0}, classify.step_decision

    def stop_after_step_2_of_epoch_2(loss, stop_requested, info):   # as if every rank had agreed on a stop there
        calls["n"] += 1
        bad, stop = decide(loss, stop_requested, info)
        return bad, stop or calls["n"] == 4 + 2      # smoke_cls on this folder: 4 steps per epoch

    monkeypatch.setattr(classify, "step_decision", stop_after_step_2_of_epoch_2)
    status, printed = run_cli(["finetune", "smoke_cls", "--data", str(data), "--output", str(out), "--epochs", "2"],
                              capsys)
    assert "2 epochs x 4 steps" in printed.out
    assert status == 130 and "at epoch 2 step 2" in printed.out
    ckpt = torch.load(out / "last.pth", weights_only=True)
    assert (ckpt["epoch"], ckpt["step"], [h["epoch"] for h in ckpt["history"]]) == (1, 2, [1])
    monkeypatch.setattr(classify, "step_decision", decide)
    status, printed = run_cli(["finetune", "smoke_cls", "--data", str(data), "--output", str(out), "--epochs", "2",
                               "--resume"], capsys)
    assert status == 0 and "at epoch 1, step 2" in printed.out
    assert [h["epoch"] for h in json.loads((out / "metrics.json").read_text())["history"]] == [1, 2]
