"""MidEpochResumeHook: resuming inside an epoch trains the rest of it once, or refuses."""
import re
import sys
from pathlib import Path

import pytest
from mmengine.runner import Runner

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from _tiny_toy import ITERS_PER_EPOCH, make_data, tiny_config  # noqa: E402

pytestmark = pytest.mark.usefixtures('one_torch_thread')


@pytest.fixture(scope='module')
def first_run(tmp_path_factory):
    """Data and work dir of one epoch (4 iterations) with a checkpoint after iteration 3."""
    data = make_data(tmp_path_factory.mktemp('data'))
    work_dir = tmp_path_factory.mktemp('work')
    Runner.from_cfg(tiny_config(data, work_dir, max_epochs=1)).train()
    return data, work_dir


def resumed(first_run, tmp_path, **overrides) -> Runner:
    data, work_dir = first_run
    return Runner.from_cfg(tiny_config(data, tmp_path, max_epochs=1, load_from=str(
        work_dir / 'iter_3.pth'), resume=True, **overrides))


def test_resumed_epoch_runs_only_its_remaining_batches(first_run, tmp_path):
    runner = resumed(first_run, tmp_path)
    runner.train()
    log = (Path(runner.log_dir) / f'{runner.timestamp}.log').read_text()
    assert 'resuming epoch 1 after its first 3 batches' in log
    assert len(re.findall(r'Epoch\(train\) \[1\]', log)) == 1  # iteration 4 only
    assert runner.iter == ITERS_PER_EPOCH


def test_default_sampler_refuses_to_train_the_epoch_twice(first_run, tmp_path):
    runner = resumed(first_run, tmp_path,
                     **{'train_dataloader.sampler': dict(type='DefaultSampler', shuffle=True)})
    with pytest.raises(RuntimeError, match=r'resuming in the middle of epoch 1 \(iteration 3, '
                       r'3 of its 4 batches done\) needs .*ResumableSampler'):
        runner.train()
