"""A NaN loss stops training with where and on which images, and saves nothing after it."""
import re
import sys
from pathlib import Path

import pytest
import torch
from mmengine.runner import Runner

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import _poison  # noqa: E402,F401  (registers PoisonImageForTest)
from _tiny_toy import last_checkpoint, make_data, state_dict, tiny_config  # noqa: E402

pytestmark = pytest.mark.usefixtures('one_torch_thread')
POISONED = 3  # img_id; NaN from its second load, i.e. in epoch 2
ITERS = 2  # per epoch: 4 images, batch 2


def test_nan_loss_stops_before_any_checkpoint_is_written(tmp_path):
    cfg = tiny_config(make_data(tmp_path / 'data', num_train=4), tmp_path / 'work', max_epochs=3,
                      **{'default_hooks.checkpoint.interval': 1, 'val_cfg': None,
                         'val_dataloader': None, 'val_evaluator': None})
    cfg.train_dataloader.dataset.pipeline.insert(
        1, dict(type='PoisonImageForTest', img_id=POISONED, from_load=2))
    runner = Runner.from_cfg(cfg)
    with pytest.raises(FloatingPointError) as error:
        runner.train()

    message = str(error.value)
    found = re.search(r'non-finite loss at iteration (\d+) \(epoch 2\): loss=nan, ', message)
    assert found, message
    assert 'loss_heatmap_l0=nan' in message and 'loss_pull=' in message
    assert re.search(rf'images of the batch: \[.*\b{POISONED} \(.*0{POISONED}\.jpg\)', message)
    bad_iter = int(found.group(1))
    assert ITERS < bad_iter <= 2 * ITERS  # in epoch 2
    work_dir = tmp_path / 'work'
    assert not (work_dir / f'iter_{bad_iter}.pth').exists()
    good = last_checkpoint(work_dir)
    assert good == work_dir / f'iter_{bad_iter - 1}.pth'
    weights = state_dict(good).values()
    assert all(torch.isfinite(w).all() for w in weights if w.is_floating_point())
