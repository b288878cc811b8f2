"""``mimtrack train`` on bad input: one line naming the problem, exit 2, nothing written."""

import torch

from mimtrack.cli import main
from tests.tracker.train_helpers import tiny_config
from mimtrack.tracker.checkpoints import load_tracker_weights
from mimtrack.tracker.model import build_model
from mimtrack.tracker.train.weights import export_weights

RECIPE = """
name: bad
data:
  train:
    - {{name: {name}, split: train}}
"""


def _run(tmp_path, capsys, recipe_name, *extra):
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text(RECIPE.format(name=recipe_name))
    out = tmp_path / "run"
    status = main(["train", str(recipe), "--output", str(out), *extra])
    err = capsys.readouterr().err.strip()
    assert status == 2 and len(err.splitlines()) == 1 and err.startswith("mimtrack train: error: ")
    assert not out.exists()
    return err


def test_unknown_dataset_name_in_the_recipe(tmp_path, capsys):
    assert "unknown training dataset 'imagenet'" in _run(tmp_path, capsys, "imagenet")


def test_missing_data_location(tmp_path, capsys):
    err = _run(tmp_path, capsys, "got10k")
    assert "no location was given" in err and "--data got10k=DIR" in err
    assert "not found" in _run(tmp_path, capsys, "got10k", "--data", f"got10k={tmp_path / 'absent'}")


def test_empty_dataset(tmp_path, capsys):
    (tmp_path / "empty" / "train").mkdir(parents=True)
    (tmp_path / "empty" / "train" / "list.txt").write_text("")
    err = _run(tmp_path, capsys, "got10k", "--data", f"got10k={tmp_path / 'empty'}")
    assert "got10k" in err


def test_bad_epochs_and_unknown_recipe(tmp_path, capsys):
    assert main(["train", "no_such_recipe", "--output", str(tmp_path / "x")]) == 2
    assert "unknown config 'no_such_recipe'" in capsys.readouterr().err
    assert "--epochs 0" in _run(tmp_path, capsys, "got10k", "--epochs", "0")


def test_exported_fp16_weights_load_back_into_the_fp32_model(tmp_path):
    cfg = tiny_config()
    model = build_model(cfg)
    torch.save({"net": model.state_dict(), "epoch": 3, "optimizer": {}}, tmp_path / "last.pth")
    export_weights(tmp_path / "last.pth", tmp_path / "demo.pth")
    saved = torch.load(tmp_path / "demo.pth", weights_only=True)
    assert set(saved) == {"net"} and saved["net"]["box_head.conv5_ctr.weight"].dtype == torch.float16
    fresh = build_model(cfg)
    load_tracker_weights(fresh, tmp_path / "demo.pth")
    for key, value in model.state_dict().items():
        loaded = fresh.state_dict()[key]
        assert loaded.dtype == value.dtype
        torch.testing.assert_close(loaded, value.half().to(value.dtype), rtol=0, atol=0)
