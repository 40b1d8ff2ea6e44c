"""Distributed training: 2 processes on CPU (gloo) through ``mim``, and SyncBN switches.

The 2-process run is the README's command with the toy config on 8 synthetic images::

    mim train mmpose configs/toy/higherhrnet_toy_synthetic.py --launcher pytorch --gpus 2 \\
        --cfg-options env_cfg.dist_cfg.backend=gloo ...

(``mim`` turns ``--gpus 2`` into ``python -m torch.distributed.launch --nproc_per_node=2``,
which needs no GPU.) SyncBN cannot run a forward pass on the CPU, so its tests check that the
switches build SyncBatchNorm layers and that reverting them (what mmengine's runner does
outside distributed runs) gives the plain model back, outputs included.
"""
import sys
from pathlib import Path

import pytest
import torch
from mmengine.config import Config
from mmengine.model import convert_sync_batchnorm, revert_sync_batchnorm
from mmpose.registry import MODELS
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from _data import (CONFIG_DIR, cli_options, cpu_overrides, data_overrides,  # noqa: E402
                   run_mim, single_thread, toy_folder)

TOY_CONFIG = CONFIG_DIR / 'toy' / 'higherhrnet_toy_synthetic.py'
W32_CONFIG = CONFIG_DIR / 'higherhrnet_w32_coco_512.py'
NUM_TRAIN, BATCH_SIZE, WORLD_SIZE = 8, 2, 2


@pytest.fixture(scope='module', autouse=True)
def _one_thread():
    with single_thread():
        yield


def test_two_process_gloo_training(tmp_path):
    data_root = toy_folder(tmp_path / 'toy', num_train=NUM_TRAIN, num_val=2)
    cfg = Config.fromfile(str(TOY_CONFIG))
    options = {
        'env_cfg.dist_cfg.backend': 'gloo',
        **cpu_overrides(batch_size=BATCH_SIZE),
        **data_overrides(cfg, data_root),
        'train_cfg.max_epochs': 1,
        'train_cfg.val_interval': 1,
        'default_hooks.logger.interval': 1,
    }
    work_dir = tmp_path / 'work'
    log = run_mim(['train', 'mmpose', str(TOY_CONFIG), '--launcher', 'pytorch', '--gpus',
                   str(WORLD_SIZE), '--work-dir', str(work_dir), '--cfg-options',
                   *cli_options(options)])

    assert '--nproc_per_node=2' in log
    assert 'Distributed training: True' in log
    # 8 images / (2 ranks x batch 2) = 2 iterations per epoch (4 on a single process).
    assert 'Epoch(train) [1][2/2]' in log
    # Both ranks validated one of the 2 images and the metric gathered them.
    assert 'Epoch(val) [1][1/1]' in log and 'coco/AP: ' in log
    checkpoint = torch.load(work_dir / 'epoch_1.pth', map_location='cpu', weights_only=False)
    assert checkpoint['meta']['iter'] == NUM_TRAIN // (BATCH_SIZE * WORLD_SIZE)


def _batch_norms(module: nn.Module, kind: type) -> int:
    return sum(isinstance(m, kind) for m in module.modules())


def _forward(model: nn.Module) -> list:
    """Eval-mode outputs of the backbone and head on a fixed image."""
    model.eval()
    with torch.no_grad():
        image = torch.linspace(-1, 1, 3 * 64 * 64).reshape(1, 3, 64, 64)
        return model.head.forward(model.backbone(image))


@pytest.fixture(scope='module')
def w32_cfg() -> Config:
    cfg = Config.fromfile(str(W32_CONFIG))
    cfg.merge_from_dict(cpu_overrides())
    return cfg


def test_backbone_syncbn_option_builds_syncbn(w32_cfg):
    """``--cfg-options model.backbone.norm_cfg.type=SyncBN``: every backbone BN is synced."""
    plain = MODELS.build(w32_cfg.model)
    cfg = w32_cfg.copy()
    cfg.merge_from_dict({'model.backbone.norm_cfg.type': 'SyncBN'})
    synced = MODELS.build(cfg.model)
    num_bn = _batch_norms(plain.backbone, nn.BatchNorm2d)
    assert num_bn > 0
    assert _batch_norms(synced.backbone, nn.SyncBatchNorm) == num_bn
    assert _batch_norms(synced.head, nn.SyncBatchNorm) == 0

    # Outside a distributed run the runner reverts SyncBN; then it is the plain model.
    synced.load_state_dict(plain.state_dict())
    reverted = revert_sync_batchnorm(synced)
    assert _batch_norms(reverted, nn.SyncBatchNorm) == 0
    for a, b in zip(_forward(reverted), _forward(plain)):
        torch.testing.assert_close(a, b)


def test_runner_sync_bn_converts_backbone_and_head(w32_cfg):
    """``--cfg-options sync_bn=torch`` (mmengine's runner, distributed runs) converts every
    BN, the head's included; converting and reverting keeps the state dict and outputs."""
    plain = MODELS.build(w32_cfg.model)
    expected = _forward(plain)
    state = {k: v.clone() for k, v in plain.state_dict().items()}
    num_bn = _batch_norms(plain, nn.BatchNorm2d)
    num_head_bn = _batch_norms(plain.head, nn.BatchNorm2d)
    assert num_head_bn == 1 + 4 * 2  # deconv BN, 4 BasicBlocks x 2

    synced = convert_sync_batchnorm(plain, implementation='torch')
    assert _batch_norms(synced, nn.SyncBatchNorm) == num_bn
    assert _batch_norms(synced.head, nn.SyncBatchNorm) == num_head_bn
    assert synced.state_dict().keys() == state.keys()

    reverted = revert_sync_batchnorm(synced)
    for a, b in zip(_forward(reverted), expected):
        torch.testing.assert_close(a, b)
