import pytest


@pytest.fixture(autouse=True)
def _one_thread(one_torch_thread):
    """Every pre-training test runs tiny models on one thread (tests/conftest.py)."""
