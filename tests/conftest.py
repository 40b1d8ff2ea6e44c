import pytest
import torch
from mmengine.registry import DefaultScope


@pytest.fixture(autouse=True)
def _mmpose_scope():
    """Every test builds from mmpose's registries, whatever an earlier test (a Runner) set."""
    with DefaultScope.overwrite_default_scope('mmpose'):
        yield


@pytest.fixture(scope='module')
def one_torch_thread():
    """One torch thread: on the shared 2-core machine, 2 threads under load are ~10x slower.

    Opt in with ``pytestmark = pytest.mark.usefixtures('one_torch_thread')``.
    """
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
