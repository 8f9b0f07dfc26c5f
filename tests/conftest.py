import pytest
import torch


@pytest.fixture(autouse=True)
def one_torch_thread():
    """Run every test with one torch thread: small BatchNorm/MLP steps are much faster than with
    two threads competing for 2 cores, and results do not depend on it."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)
