"""``mim test mmpose`` on the W32-512 SWAHR config with a checkpoint in SWAHR's published layout.

The checkpoint is made without training: the SWAHR model built from the config, initialised,
saved under SWAHR's bare keys (``conv1.weight``, ``conv_scale_layers.0.0.weight``, ...) as
``pose_higher_hrnet_w32_512.pth``, the name SWAHR publishes it under. ``--checkpoint`` must load
it completely and the test must print ``coco/AP`` (keypoint threshold 0, so that the untrained
model still predicts people).
"""
import re
import sys
from pathlib import Path

import mmengine
import torch
from mmengine.config import Config
from mmengine.registry import DefaultScope
from mmpose.registry import MODELS

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from _data import (CONFIG_DIR, cli_options, coco_folder, cpu_overrides,  # noqa: E402
                   data_overrides, input_size_overrides, run_mim)

CONFIG = CONFIG_DIR / 'higherhrnet_w32_coco_512_swahr.py'
AP_LINE = re.compile(r'coco/AP: (\d+\.\d+)')


def _published_swahr_checkpoint(path: Path) -> dict:
    """An initialised W32 SWAHR model saved as SWAHR's files are: bare keys, fp32."""
    cfg = Config.fromfile(str(CONFIG))
    cfg.model.backbone.init_cfg = None
    torch.manual_seed(0)
    with DefaultScope.overwrite_default_scope('mmpose'):
        model = MODELS.build(cfg.model)
    model.init_weights()
    state_dict = {k.split('.', 1)[1]: v for k, v in model.state_dict().items()}
    torch.save(state_dict, path)
    return state_dict


def test_mim_test_loads_swahr_weights_and_prints_ap(tmp_path):
    checkpoint = tmp_path / 'pose_higher_hrnet_w32_512.pth'
    state_dict = _published_swahr_checkpoint(checkpoint)
    assert 'conv_scale_layers.1.3.weight' in state_dict and 'conv1.weight' in state_dict

    cfg = Config.fromfile(str(CONFIG))
    options = {
        **cpu_overrides(),
        **data_overrides(cfg, coco_folder(tmp_path / 'coco')),
        **input_size_overrides(cfg, 256),
        'model.head.decoder.decode_keypoint_thr': 0.0,
    }
    # mmpose's test.py appends the --dump metric before merging --cfg-options: the COCO metric
    # is test_evaluator.0 there.
    options = {k.replace('test_evaluator.', 'test_evaluator.0.'): v for k, v in options.items()}
    dump = tmp_path / 'predictions.pkl'
    log = run_mim(['test', 'mmpose', str(CONFIG), '--checkpoint', str(checkpoint),
                   '--work-dir', str(tmp_path / 'work'), '--dump', str(dump),
                   '--cfg-options', *cli_options(options)])

    assert f'Load checkpoint from {checkpoint}' in log
    assert 'do not match exactly' not in log  # mmengine's note on missing / unexpected keys
    found = AP_LINE.findall(log)
    assert found, log[-3000:]
    assert 0 <= float(found[-1]) <= 1
    predictions = mmengine.load(str(dump))
    assert len(predictions) == 4  # the 4 val images
    assert all(p['pred_instances']['keypoints'].shape[1:] == (17, 2) for p in predictions)
