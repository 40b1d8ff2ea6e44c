"""AtomicCheckpointHook keeps mmengine's CheckpointHook behaviour, in a kill-safe order.

Tiny toy runs (``tests/_tiny_toy.py``, 4 images, batch 2: 2 iterations per epoch, 2 epochs,
a checkpoint every iteration), each with mmengine's ``CheckpointHook`` and ours.
"""
import sys
from pathlib import Path

import pytest
import torch
from mmengine.hooks import Hook
from mmengine.runner import Runner
from mmpose.registry import HOOKS

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from _tiny_toy import last_checkpoint, make_data, tiny_config  # noqa: E402

from higherhrnet_plugin.engine.hooks import AtomicCheckpointHook  # noqa: E402

pytestmark = pytest.mark.usefixtures('one_torch_thread')
HOOK_TYPES = ['CheckpointHook', 'AtomicCheckpointHook']


@HOOKS.register_module()
class FailSecondSaveForTest(Hook):
    """Fails the second checkpoint write (a full disk, a lost mount)."""

    def __init__(self) -> None:
        self.saves = 0

    def before_save_checkpoint(self, runner, checkpoint: dict) -> None:
        self.saves += 1
        if self.saves == 2:
            raise OSError('No space left on device')


@pytest.fixture(scope='module')
def data(tmp_path_factory) -> Path:
    return make_data(tmp_path_factory.mktemp('data'), num_train=4, num_val=1)


def runner_with(hook_type: str, data: Path, work_dir: Path, **hook) -> Runner:
    checkpoint = dict(type=hook_type, interval=1, by_epoch=False, max_keep_ckpts=2,
                      save_best='coco/AP', rule='greater')
    return Runner.from_cfg(tiny_config(data, work_dir, max_epochs=2, **{
        'default_hooks.checkpoint': dict(checkpoint, **hook),
        'train_cfg.val_interval': 1,
    }))


def checkpoint_hook(runner: Runner):
    return next(h for h in runner.hooks if type(h).__name__.endswith('CheckpointHook'))


@pytest.fixture(scope='module')
def trained(data, tmp_path_factory):
    """Work dir and runner after training, per hook type."""
    runs = {}
    for hook_type in HOOK_TYPES:
        work_dir = tmp_path_factory.mktemp(hook_type)
        runner = runner_with(hook_type, data, work_dir)
        runner.train()
        runs[hook_type] = work_dir, runner
    return runs


def test_same_checkpoints_and_bookkeeping_as_mmengine(trained):
    found = {}
    for hook_type, (work_dir, _) in trained.items():
        info = torch.load(work_dir / 'iter_4.pth', map_location='cpu',
                          weights_only=False)['message_hub']['runtime_info']
        found[hook_type] = (sorted(p.name for p in work_dir.glob('*.pth')),
                            last_checkpoint(work_dir).name, info['keep_ckpt_ids'],
                            Path(info['best_ckpt']).name)
    assert found['AtomicCheckpointHook'] == found['CheckpointHook']
    assert found['CheckpointHook'] == (['best_coco_AP_iter_2.pth', 'iter_3.pth', 'iter_4.pth'],
                                       'iter_4.pth', [3, 4], 'best_coco_AP_iter_2.pth')
    assert not list(trained['AtomicCheckpointHook'][0].glob('.*'))  # no temporary file left


@pytest.mark.parametrize('hook_type', HOOK_TYPES)
def test_old_best_is_deleted_only_after_the_new_one_is_written(hook_type, trained, monkeypatch):
    """A better validation score at iteration 5: the new best and a checkpoint are written;
    mmengine deletes the old best (and the oldest kept checkpoint) before writing."""
    work_dir, runner = trained[hook_type]
    listings, save = [], runner.save_checkpoint

    def recording_save(*args, **kwargs):
        listings.append(sorted(p.name for p in work_dir.glob('*.pth')))
        save(*args, **kwargs)

    monkeypatch.setattr(runner, 'save_checkpoint', recording_save)
    runner.train_loop._iter = 5
    checkpoint_hook(runner).after_val_epoch(runner, {'coco/AP': 0.5})

    assert sorted(p.name for p in work_dir.glob('*.pth')) == [
        'best_coco_AP_iter_5.pth', 'iter_4.pth', 'iter_5.pth']
    kept_old_files = all('best_coco_AP_iter_2.pth' in names and 'iter_3.pth' in names
                         for names in listings)
    assert kept_old_files == (hook_type == 'AtomicCheckpointHook')


@pytest.mark.parametrize('hook_type', HOOK_TYPES)
def test_a_failed_write_keeps_the_previous_checkpoint(hook_type, data, tmp_path):
    runner = runner_with(hook_type, data, tmp_path, max_keep_ckpts=1, save_best=None)
    runner.register_custom_hooks([dict(type='FailSecondSaveForTest')])
    with pytest.raises(OSError, match='No space left'):
        runner.train()
    assert last_checkpoint(tmp_path) == tmp_path / 'iter_1.pth'
    # mmengine deletes iter_1 before writing iter_2: nothing is left to resume from.
    assert (tmp_path / 'iter_1.pth').exists() == (hook_type == 'AtomicCheckpointHook')


def test_atomic_backend_is_the_default_for_a_local_folder(tmp_path):
    assert AtomicCheckpointHook(interval=1).backend_args == dict(backend='atomic_local')
    given = dict(backend='local')
    assert AtomicCheckpointHook(interval=1, backend_args=given).backend_args == given
    assert AtomicCheckpointHook(interval=1, out_dir='s3://bucket/x').backend_args is None
