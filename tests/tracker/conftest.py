import pytest
import torch

from mimtrack.tracker.checkpoints import save_tracker_checkpoint
from mimtrack.tracker.config import load_tracker_config
from mimtrack.tracker.model import build_model


@pytest.fixture(scope="session")
def checkpoint(tmp_path_factory):
    """A real, untrained (seeded) ViT-Tiny tracker checkpoint of the vit_tiny_256_ce recipe."""
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("ckpt") / "tiny.pth"
    save_tracker_checkpoint(path, build_model(load_tracker_config("vit_tiny_256_ce")))
    return path


@pytest.fixture(scope="session")
def benchmark_script():
    """``benchmark_script("template_swap")``: the module ``benchmarks/<name>.py`` (scripts, not a package)."""
    import importlib.util
    import pathlib

    def load(name):
        path = pathlib.Path(__file__).resolve().parents[2] / "benchmarks" / f"{name}.py"
        spec = importlib.util.spec_from_file_location(name, path)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        return module
    return load
