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


def pytest_configure(config):
    """The real paired cells (``propalign_lite.datasets.load_bmmc_cite`` / ``load_mop_snare``)
    are read from the project's ``../shared/data`` when it exists and no other place is set."""
    import os
    import pathlib

    shared = pathlib.Path(__file__).resolve().parents[2] / "shared" / "data"
    if shared.is_dir():
        os.environ.setdefault("PROPALIGN_DATA_DIR", str(shared))
