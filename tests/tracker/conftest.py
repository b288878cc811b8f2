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
