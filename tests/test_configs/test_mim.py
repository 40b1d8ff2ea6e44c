"""``mim train mmpose`` / ``mim test mmpose`` with the W32-512 config, as the README says.

One module-scoped ``mim train`` (1 epoch = 2 iterations of batch 2 on the 4 shared COCO images,
input 256, validation at the end) makes the checkpoint that every ``mim test`` variant and the
``--resume`` run use. Each variant dumps its predictions (``--dump``), so the tests can check
that the option reached the model, not only that the command printed an AP. The keypoint
threshold is 0 in the tests so that the barely trained model still predicts people.
"""
import re
import sys
from pathlib import Path
from typing import Any, Dict, List

import mmengine
import numpy as np
import pytest
import torch
from mmengine.config import Config

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from _data import (CONFIG_DIR, cli_options, coco_folder, cpu_overrides,  # noqa: E402
                   data_overrides, input_size_overrides, pipeline_index, run_mim)

CONFIG = CONFIG_DIR / 'higherhrnet_w32_coco_512.py'
SIZE = 256
AP_LINE = re.compile(r'coco/AP: (\d+\.\d+)')


@pytest.fixture(scope='module')
def options(tmp_path_factory) -> Dict[str, Any]:
    """Overrides for the tiny COCO folder, a 256 input and CPU."""
    data_root = coco_folder(tmp_path_factory.mktemp('coco'))
    cfg = Config.fromfile(str(CONFIG))
    overrides = {
        **cpu_overrides(batch_size=2),
        **data_overrides(cfg, data_root),
        **input_size_overrides(cfg, SIZE),
        'model.head.decoder.decode_keypoint_thr': 0.0,
        'default_hooks.logger.interval': 1,
        'default_hooks.checkpoint.interval': 1,
        'randomness.seed': 0,
    }
    return overrides


@pytest.fixture(scope='module')
def work_dir(tmp_path_factory, options) -> Path:
    """A work dir after ``mim train`` of one epoch with validation."""
    work_dir = tmp_path_factory.mktemp('work')
    log = run_mim(['train', 'mmpose', str(CONFIG), '--work-dir', str(work_dir),
                   '--cfg-options', *cli_options(options),
                   'train_cfg.max_epochs=1', 'train_cfg.val_interval=1'])
    assert 'Epoch(train) [1][2/2]' in log
    assert AP_LINE.search(log), log[-3000:]
    return work_dir


def mim_test(work_dir: Path, options: Dict[str, Any], extra: List[str], name: str) -> tuple:
    """``mim test`` of epoch_1.pth; returns (printed AP, dumped predictions)."""
    dump = work_dir / f'{name}.pkl'
    # mmpose's test.py appends the --dump metric (test_evaluator becomes a list) before it
    # merges --cfg-options, so the COCO metric is test_evaluator.0 there.
    options = {k.replace('test_evaluator.', 'test_evaluator.0.'): v for k, v in options.items()}
    log = run_mim(['test', 'mmpose', str(CONFIG), '--checkpoint',
                   str(work_dir / 'epoch_1.pth'), '--work-dir', str(work_dir / name),
                   '--dump', str(dump), '--cfg-options', *cli_options(options), *extra])
    found = AP_LINE.findall(log)
    assert found, log[-3000:]
    return float(found[-1]), mmengine.load(str(dump))


def keypoints(predictions: list) -> List[np.ndarray]:
    return [np.asarray(p['pred_instances']['keypoints']) for p in predictions]


def test_train_writes_a_checkpoint(work_dir):
    assert (work_dir / 'last_checkpoint').read_text().strip().endswith('epoch_1.pth')
    # save_best='coco/AP' of the config, after the validation of epoch 1.
    assert (work_dir / 'best_coco_AP_epoch_1.pth').is_file()
    checkpoint = torch.load(work_dir / 'epoch_1.pth', map_location='cpu', weights_only=False)
    assert (checkpoint['meta']['epoch'], checkpoint['meta']['iter']) == (1, 2)
    assert checkpoint['state_dict']['backbone.conv1.weight'].shape == (64, 3, 3, 3)
    assert checkpoint['state_dict']['head.final_layers.0.weight'].shape == (34, 32, 1, 1)


@pytest.fixture(scope='module')
def flip_results(work_dir, options):
    return mim_test(work_dir, options, [], 'flip')


def test_mim_test_prints_ap(flip_results):
    ap, predictions = flip_results
    assert 0 <= ap <= 1
    assert len(predictions) == 4  # the 4 val images
    assert all(k.shape[1:] == (17, 2) and len(k) > 0 for k in keypoints(predictions))


def test_mim_test_without_flip(work_dir, options, flip_results):
    ap, predictions = mim_test(work_dir, options, ['model.test_cfg.flip_test=False'], 'noflip')
    assert 0 <= ap <= 1
    assert [p['img_id'] for p in predictions] == [p['img_id'] for p in flip_results[1]]
    # Without the flipped view the heatmaps, hence the predictions, change.
    assert any(
        a.shape != b.shape or not np.allclose(a, b)
        for a, b in zip(keypoints(predictions), keypoints(flip_results[1])))


def test_mim_test_multiscale(work_dir, options, flip_results):
    cfg = Config.fromfile(str(CONFIG))
    resize = pipeline_index(cfg, 'test_dataloader', 'HigherHRNetResize')
    multiscale = ['model.test_cfg.multiscale_test=True',
                  f'test_dataloader.dataset.pipeline.{resize}.aug_scales=(0.5,)']
    ap, predictions = mim_test(work_dir, options, multiscale, 'multiscale')
    assert 0 <= ap <= 1
    assert len(predictions) == 4
    assert all(p['aug_scales'] == [0.5] for p in predictions)
    assert any(
        a.shape != b.shape or not np.allclose(a, b)
        for a, b in zip(keypoints(predictions), keypoints(flip_results[1])))


def test_mim_train_resume(work_dir, options):
    """``--resume epoch_1.pth`` goes on at epoch 2 (through the plugin's checkpoint loader:
    mmengine's message hub and numpy values in ``meta`` under torch's weights_only load)."""
    resume_dir = work_dir / 'resume'
    log = run_mim(['train', 'mmpose', str(CONFIG), '--work-dir', str(resume_dir),
                   '--resume', str(work_dir / 'epoch_1.pth'),
                   '--cfg-options', *cli_options(options),
                   'train_cfg.max_epochs=2', 'train_cfg.val_interval=1'])
    assert 'resumed epoch: 1, iter: 2' in log
    assert 'Epoch(train) [1]' not in log
    assert 'Epoch(train) [2][2/2]' in log
    checkpoint = torch.load(resume_dir / 'epoch_2.pth', map_location='cpu', weights_only=False)
    assert (checkpoint['meta']['epoch'], checkpoint['meta']['iter']) == (2, 4)
