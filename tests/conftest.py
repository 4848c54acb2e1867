import pytest
import torch


@pytest.fixture(autouse=True)
def _single_thread_torch():
    """Tests run on a small shared machine: keep torch to one thread for stable timing."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
