"""The plugin's checkpoint loader: mmengine runner checkpoints load under torch >= 2.6."""
import pickle

import numpy as np
import pytest
import torch
from mmengine.model import BaseModel
from mmengine.runner import Runner
from mmengine.runner.checkpoint import CheckpointLoader, _load_checkpoint
from torch import nn
from torch.utils.data import Dataset

import higherhrnet_plugin  # noqa: F401  (installs the loader)
from higherhrnet_plugin.compat.checkpoint_loader import trusted_load


class _Line(BaseModel):
    """y = w x + b fitted by MSE: the smallest model the runner can train."""

    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(1, 1)

    def forward(self, x, y, mode='tensor'):
        pred = self.fc(x)
        if mode == 'loss':
            return dict(loss=((pred - y)**2).mean())
        return pred


class _Points(Dataset):

    def __len__(self):
        return 8

    def __getitem__(self, i):
        x = torch.tensor([float(i)])
        return dict(x=x, y=2 * x + 1)


def _runner(work_dir, **kwargs) -> Runner:
    return Runner(
        model=_Line(),
        work_dir=str(work_dir),
        train_dataloader=dict(
            dataset=_Points(), sampler=dict(type='DefaultSampler', shuffle=False),
            batch_size=4, collate_fn=dict(type='default_collate')),
        optim_wrapper=dict(optimizer=dict(type='SGD', lr=1e-3)),
        train_cfg=dict(by_epoch=True, max_epochs=kwargs.pop('max_epochs', 2)),
        default_hooks=dict(checkpoint=dict(type='CheckpointHook', interval=1)),
        default_scope='mmengine',
        **kwargs)


@pytest.fixture(scope='module')
def trained(tmp_path_factory):
    work_dir = tmp_path_factory.mktemp('runner')
    runner = _runner(work_dir)
    runner.train()
    ckpt = work_dir / 'epoch_2.pth'
    return runner, ckpt


def test_plain_torch_load_rejects_runner_checkpoint(trained):
    """The breakage this module fixes: torch's default refuses mmengine's own objects."""
    _, ckpt = trained
    with pytest.raises(pickle.UnpicklingError):
        torch.load(ckpt, weights_only=True)


def test_runner_checkpoint_holds_message_hub_and_numpy(trained):
    _, ckpt = trained
    checkpoint = _load_checkpoint(str(ckpt), map_location='cpu')
    hub = checkpoint['message_hub']
    assert 'train/loss' in hub['log_scalars']
    assert checkpoint['meta']['epoch'] == 2
    assert isinstance(checkpoint['meta']['seed'], (int, np.integer))


def test_runner_checkpoint_loads_before_any_history_buffer_exists(trained, monkeypatch):
    """A process that only loads (demo, init_model) has not filled the statistics registry."""
    from mmengine.logging import HistoryBuffer
    monkeypatch.setattr(HistoryBuffer, '_statistics_methods', {})
    _, ckpt = trained
    hub = _load_checkpoint(str(ckpt), map_location='cpu')['message_hub']
    assert 'train/loss' in hub['log_scalars']


def test_load_from(trained, tmp_path):
    runner, ckpt = trained
    fresh = _runner(tmp_path, load_from=str(ckpt))
    fresh.load_or_resume()
    for name, value in runner.model.state_dict().items():
        torch.testing.assert_close(fresh.model.state_dict()[name], value)
    assert fresh.epoch == 0  # load_from restores weights only


def test_resume_continues_training(trained, tmp_path):
    runner, ckpt = trained
    fresh = _runner(tmp_path, load_from=str(ckpt), resume=True, max_epochs=3)
    fresh.train()
    assert fresh.epoch == 3
    assert fresh.iter == 6  # 2 epochs resumed + 1 more, 2 iterations each
    hub_loss = fresh.message_hub.get_scalar('train/loss')
    assert len(hub_loss.data[0]) >= 3  # history from the first run was restored


def test_loader_is_registered_for_local_paths():
    loader = CheckpointLoader._get_checkpoint_loader('/some/file.pth')
    assert loader.__module__ == 'higherhrnet_plugin.compat.checkpoint_loader'


class _Evil:

    def __reduce__(self):
        return (print, ('this must never run',))


def test_arbitrary_objects_are_refused(tmp_path):
    path = tmp_path / 'evil.pth'
    torch.save({'state_dict': {}, 'payload': _Evil()}, path)
    with pytest.raises(pickle.UnpicklingError, match='TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD'):
        trusted_load(str(path))


def test_numpy_values_in_meta_load(tmp_path):
    path = tmp_path / 'meta.pth'
    meta = dict(a=np.float64(1.5), b=np.arange(3, dtype=np.int64), c=np.float32(2))
    torch.save({'state_dict': {'w': torch.ones(2)}, 'meta': meta}, path)
    loaded = trusted_load(str(path))
    assert loaded['meta']['a'] == 1.5
    np.testing.assert_array_equal(loaded['meta']['b'], [0, 1, 2])
