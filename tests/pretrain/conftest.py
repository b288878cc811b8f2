import pytest
import torch


@pytest.fixture(autouse=True)
def single_thread():
    """These models are tiny: one intra-op thread is faster, and far faster on a shared, busy CPU."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
