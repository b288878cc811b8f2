"""One import root: the install adds only ``mimtrack`` to site-packages, and folders of the user's own named like
ours (``tracker/``, ``evaluation/``, ...) in the working directory change nothing that ``import mimtrack...`` loads."""

import ast
import importlib.metadata
import os
import pathlib
import re
import subprocess
import sys

import pytest

REPO = pathlib.Path(__file__).resolve().parents[1]
SUBPACKAGES = ("tracker", "evaluation", "pretrain", "experiments")


def test_the_distribution_has_one_top_level_package():
    dist = importlib.metadata.distribution("mimtrack")
    top_level = (dist.read_text("top_level.txt") or "").split()
    assert top_level == ["mimtrack"]
    # an editable install maps each sub-package to its folder at the top of the repository
    finders = [f for f in (dist.files or []) if f.name.startswith("__editable__") and f.suffix == ".py"]
    for finder in finders:
        mapping = ast.literal_eval(re.search(r"^MAPPING[^=]*=\s*(\{.*?\})", finder.read_text(), re.M).group(1))
        assert {name.split(".")[0] for name in mapping} == {"mimtrack"}, mapping
        assert {name: pathlib.Path(path).name for name, path in mapping.items() if name != "mimtrack"} == {
            f"mimtrack.{sub}": sub for sub in SUBPACKAGES}


def test_shadowing_folders_in_the_working_directory_change_nothing(tmp_path):
    for name in SUBPACKAGES:  # a research repository's own packages, importable from its working directory
        (tmp_path / name).mkdir()
        (tmp_path / name / "__init__.py").write_text("raise ImportError('the user package was imported')\n")
        (tmp_path / name / "cli.py").write_text("raise ImportError('the user package was imported')\n")
    code = ("import mimtrack.tracker, mimtrack.evaluation, mimtrack.pretrain, mimtrack.experiments, "
            "mimtrack.evaluation.cli\n"
            "from mimtrack import load_tracker, build_model\n"
            "for m in (mimtrack.tracker, mimtrack.evaluation, mimtrack.pretrain, mimtrack.experiments):\n"
            "    print(m.__file__)\n")
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    out = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0, out.stderr
    files = [pathlib.Path(line) for line in out.stdout.split()]
    assert [f.parent.name for f in files] == list(SUBPACKAGES)
    assert all(tmp_path not in f.parents for f in files)


def test_import_mimtrack_and_the_eval_command_do_not_import_torch():
    code = ("import sys, mimtrack, mimtrack.evaluation.cli\n"
            "assert 'torch' not in sys.modules, 'torch imported'\n"
            "mimtrack.load_tracker\n"
            "assert 'torch' in sys.modules\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr


@pytest.mark.parametrize("name", ["load_tracker", "build_model", "Tracker", "read_image_rgb", "load_tracker_config"])
def test_the_short_api_is_the_tracker_api(name):
    import mimtrack
    import mimtrack.images
    import mimtrack.tracker.config
    import mimtrack.tracker.inference
    import mimtrack.tracker.model

    owners = (mimtrack.tracker.inference, mimtrack.tracker.model, mimtrack.tracker.config, mimtrack.images)
    assert getattr(mimtrack, name) in [getattr(m, name, None) for m in owners]
    with pytest.raises(AttributeError):
        mimtrack.no_such_name
