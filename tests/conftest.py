import pytest
from mmengine.registry import DefaultScope


@pytest.fixture(autouse=True)
def _mmpose_scope():
    """Every test builds from mmpose's registries, whatever an earlier test (a Runner) set."""
    with DefaultScope.overwrite_default_scope('mmpose'):
        yield
