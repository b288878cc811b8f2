import json

import cv2
import numpy as np
import pytest
import torch

from mimtrack import cli
from mimtrack.config import recipe_names
from mimtrack.pretrain.config import load_pretrain_config
from mimtrack.pretrain.data import ImageSource
from mimtrack.pretrain.engine import lr_at, param_groups, train

SMALL = ["model.img_size=32", "model.patch_size=8", "model.embed_dim=64", "model.depth=2", "model.num_heads=4",
         "mae.decoder_dim=32", "mae.decoder_heads=2", "train.batch_size=4", "train.epochs=2", "train.warmup_epochs=1",
         "train.device=cpu", "train.amp=none", "train.lr=1.0e-3", "data.num_workers=0", "train.checkpoint_every=1"]


def make_images(root, count=12, classes=2):
    rng = np.random.default_rng(0)
    for i in range(count):
        folder = root / "train" / f"n{i % classes:08d}"
        folder.mkdir(parents=True, exist_ok=True)
        cv2.imwrite(str(folder / f"img_{i}.JPEG"), (rng.random((40, 48, 3)) * 255).astype(np.uint8))
    return root


def small_config(recipe="mae_tiny", extra=()):
    return load_pretrain_config(recipe, SMALL + list(extra))


def test_shipped_recipes_load_and_follow_mae_lite():
    assert {"mae_tiny", "mae_tiny_distill", "mae_tiny_d2", "mocov3_tiny", "mae_small", "smoke_cpu"} <= set(
        recipe_names("pretrain"))
    for name in recipe_names("pretrain"):
        load_pretrain_config(name)
    cfg = load_pretrain_config("mae_tiny")
    assert cfg.train.blr * cfg.train.batch_size * 8 / 256 == pytest.approx(2.4e-3)  # 4096 on 8 GPUs
    assert (cfg.mae.decoder_dim, cfg.mae.decoder_depth, cfg.mae.decoder_heads) == (96, 1, 3)
    assert cfg.data.scale == (0.08, 1.0) and cfg.train.betas == (0.9, 0.95) and cfg.train.warmup_epochs == 40
    d2 = load_pretrain_config("mae_tiny_d2")
    assert d2.mae.decode_layer == 8 and d2.distill.extra_attention_block and d2.distill.student_attn_layer == 13
    moco = load_pretrain_config("mocov3_tiny")
    assert (moco.mocov3.temperature, moco.mocov3.momentum, moco.train.weight_decay) == (0.2, 0.99, 0.1)


def test_lr_schedule_and_weight_decay_groups():
    assert lr_at(0, 1.0, 10, 110) == 0 and lr_at(5, 1.0, 10, 110) == 0.5 and lr_at(10, 1.0, 10, 110) == 1.0
    assert lr_at(60, 1.0, 10, 110) == pytest.approx(0.5) and lr_at(110, 1.0, 10, 110, 0.1) == pytest.approx(0.1)
    from mimtrack.pretrain.engine import build_method

    method = build_method(small_config())
    decay, no_decay = param_groups(method, 0.05)
    names = {id(p): n for n, p in method.named_parameters()}
    decay_names = {names[id(p)] for p in decay["params"]}
    no_decay_names = {names[id(p)] for p in no_decay["params"]}
    assert {"model.cls_token", "model.mask_token", "model.blocks.0.attn.qkv.weight"} <= decay_names
    assert {"model.blocks.0.attn.qkv.bias", "model.norm.weight"} <= no_decay_names
    assert "model.pos_embed" not in decay_names | no_decay_names  # fixed sin-cos table


def test_cli_run_writes_mae_lite_layout_that_initialises_the_tracker(tmp_path, capsys):
    data = make_images(tmp_path / "data")
    (data / "train" / "n00000000" / "broken.JPEG").write_bytes(b"\xff\xd8 truncated")
    out = tmp_path / "run"
    args = ["pretrain", "mae_tiny", "--data", str(data), "--output", str(out), "--epochs", "2"]
    for item in SMALL:
        args += ["--set", item]
    assert cli.main(args) == 0
    printed = capsys.readouterr().out
    assert "epoch 1: skipped 1 unreadable image(s):" in printed and "broken.JPEG" in printed
    history = json.loads((out / "log.json").read_text())
    assert [h["epoch"] for h in history] == [1, 2] and all(h["skipped_images"] == 1 for h in history)
    ckpt = torch.load(out / "last.pth", weights_only=True)
    assert ckpt["epoch"] == 2 and ckpt["step"] == 0
    state = ckpt["model"]
    assert state["model.pos_embed"].shape == (1, 17, 64) and "model.decoder_pred.weight" in state
    assert all(k.startswith("model.") for k in state)
    assert (out / "checkpoint_e0002.pth").is_file()

    from mimtrack.tracker.config import load_tracker_config
    from mimtrack.tracker.model.ostrack import build_model

    tracker_cfg = load_tracker_config("vit_tiny_256_ce", overrides=[
        "model.backbone.embed_dim=64", "model.backbone.depth=2", "model.backbone.num_heads=4",
        "model.backbone.patch_size=8", "model.backbone.pretrained_grid=4", "crop.template_size=32",
        "crop.search_size=64", "model.ce.locations=[]", "model.ce.keep_ratio=[]", "model.head.channels=16"])
    model = build_model(tracker_cfg, pretrained=str(out / "last.pth"))
    report = model.pretrained_report
    assert report.missing == [] and report.unexpected == []
    torch.testing.assert_close(model.backbone.blocks[1].mlp.fc2.weight, state["model.blocks.1.mlp.fc2.weight"])

    # the run is not overwritten without --resume
    assert cli.main(args) == 2
    assert "already holds a run (last.pth): pass --resume" in capsys.readouterr().err


def test_resume_continues_identically(tmp_path):
    data = make_images(tmp_path / "data", count=13)
    cfg = small_config("mae_tiny", ["train.epochs=3"])  # 3 steps per epoch
    train(cfg, data, tmp_path / "full", log=lambda *_: None)
    train(cfg, data, tmp_path / "split", max_steps=4, log=lambda *_: None)  # stops mid-epoch 2
    stopped = torch.load(tmp_path / "split" / "last.pth", weights_only=True)
    assert (stopped["epoch"], stopped["step"]) == (1, 1)
    train(cfg, data, tmp_path / "split", resume=True, log=lambda *_: None)
    full = torch.load(tmp_path / "full" / "last.pth", weights_only=True)
    split = torch.load(tmp_path / "split" / "last.pth", weights_only=True)
    assert full["model"].keys() == split["model"].keys()
    for key in full["model"]:
        assert torch.equal(full["model"][key], split["model"][key]), key
    assert torch.equal(full["optimizer"]["state"][0]["exp_avg"], split["optimizer"]["state"][0]["exp_avg"])


def test_distillation_d2_and_mocov3_runs(tmp_path, capsys):
    from mimtrack.pretrain.mae import mae_vit

    data = make_images(tmp_path / "data", count=8)
    teacher = mae_vit("vit_tiny", img_size=32, patch_size=8, decoder_depth=0)  # 12 layers, 192-d, 12 heads
    torch.save({"model": teacher.state_dict()}, tmp_path / "teacher.pth")  # MAE's layout
    d2 = small_config("mae_tiny_d2", ["distill.teacher_arch=vit_tiny", "mae.decode_layer=1",
                                      "distill.student_attn_layer=3", "train.epochs=1", "train.warmup_epochs=0"])
    history = train(d2, data, tmp_path / "d2", teacher=str(tmp_path / "teacher.pth"), log=lambda *_: None)
    assert history[0]["attn"] > 0 and history[0]["rec"] > 0
    state = torch.load(tmp_path / "d2" / "last.pth", weights_only=True)["model"]
    assert state["attn_adapter.weight"].shape == (12, 4, 1, 1) and "model.blocks.2.attn.qkv.weight" in state
    assert not any(k.startswith("teacher.") for k in state)

    # the CLI names the teacher file and the mismatch in one line
    args = ["pretrain", "mae_tiny_distill", "--data", str(data), "--output", str(tmp_path / "bad"),
            "--teacher", str(tmp_path / "d2" / "last.pth")]
    for item in SMALL:
        args += ["--set", item]
    assert cli.main(args) == 2
    err = capsys.readouterr().err
    assert "last.pth: has 3 blocks but distill.teacher_arch=vit_base has 12 (wrong architecture?)" in err

    moco = small_config("mocov3_tiny", ["mocov3.dim=16", "mocov3.mlp_dim=32", "train.epochs=1",
                                        "train.warmup_epochs=0"])
    history = train(moco, data, tmp_path / "moco", log=lambda *_: None)
    assert history[0]["ctr"] > 0 and 0.99 <= history[0]["momentum"] < 1


@pytest.mark.parametrize("case", ["empty", "undecodable", "missing", "no_teacher"])
def test_bad_input_is_a_one_line_error(tmp_path, capsys, case):
    data = tmp_path / "data"
    (data / "train" / "n0").mkdir(parents=True)
    recipe = "mae_tiny"
    if case == "undecodable":
        for i in range(3):
            (data / "train" / "n0" / f"{i}.jpg").write_bytes(b"not an image")
    elif case == "missing":
        data = tmp_path / "nowhere"
    elif case == "no_teacher":
        make_images(data)
        recipe = "mae_tiny_distill"
    args = ["pretrain", recipe, "--data", str(data), "--output", str(tmp_path / "out")]
    for item in SMALL:
        args += ["--set", item]
    assert cli.main(args) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and err.startswith("mimtrack pretrain: error: ")
    expected = {"empty": "train: no images found", "undecodable": "none of the first 3 images can be decoded",
                "missing": "nowhere: not a folder", "no_teacher": "pass --teacher CKPT"}[case]
    assert expected in err
    assert not (tmp_path / "out" / "last.pth").exists()


def test_lmdb_source(tmp_path):
    import lmdb

    image = cv2.imencode(".jpg", np.zeros((20, 30, 3), np.uint8))[1].tobytes()
    env = lmdb.open(str(tmp_path / "train"), map_size=1 << 22)
    with env.begin(write=True) as txn:
        txn.put(b"a/1.jpg", image)
        txn.put(b"b/2.jpg", b"junk")
        txn.put(b"__meta__", b"{}")
    env.close()
    source = ImageSource(tmp_path)
    assert source.names == ["a/1.jpg", "b/2.jpg"] and source.read(0) == image
