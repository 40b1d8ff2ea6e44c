"""Exported models shared by the deployment tests (one export per session each)."""
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from _onnx_models import (COCO_IMAGE, TOY_CONFIG, W32_CONFIG,  # noqa: E402
                          config_at_input_size, random_checkpoint)

from higherhrnet_plugin.deploy.export import export_onnx  # noqa: E402


@pytest.fixture(scope='session')
def toy_checkpoint(tmp_path_factory):
    return random_checkpoint(TOY_CONFIG, tmp_path_factory.mktemp('toy') / 'toy.pth')


@pytest.fixture(scope='session')
def toy_onnx(toy_checkpoint):
    """The toy model through the default (dynamo) exporter and its verification."""
    out = toy_checkpoint.with_name('toy.onnx')
    export_onnx(TOY_CONFIG, toy_checkpoint, out, COCO_IMAGE)
    return out


@pytest.fixture(scope='session')
def w32_files(tmp_path_factory):
    """W32-512 at input 256 (canvases 448x256 / 256x384), random weights, exported with the
    torchscript exporter (the dynamo one takes minutes for W32 on 2 cores): config,
    checkpoint, .onnx."""
    root = tmp_path_factory.mktemp('w32')
    config = config_at_input_size(W32_CONFIG, 256, root / 'w32_256.py')
    checkpoint = random_checkpoint(config, root / 'w32.pth')
    out = root / 'w32.onnx'
    export_onnx(config, checkpoint, out, COCO_IMAGE, exporter='torchscript')
    return config, checkpoint, out
