"""Tests of tools/export_onnx.py: a verified file or a clear error and nothing written."""
import sys
from pathlib import Path

import onnx
import pytest
import torch

from higherhrnet_plugin.deploy import METADATA_KEY, OnnxPoseEstimator, read_image
from higherhrnet_plugin.deploy.export import onnx_export

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from _onnx_models import (COCO_IMAGE, TOY_CONFIG, W32_CONFIG,  # noqa: E402
                          random_checkpoint)
from _tools import load_tool  # noqa: E402

export_tool = load_tool('export_onnx')
pytestmark = pytest.mark.usefixtures('one_torch_thread')


@pytest.fixture(scope='module')
def checkpoint(tmp_path_factory):
    return random_checkpoint(TOY_CONFIG, tmp_path_factory.mktemp('ckpt') / 'toy.pth')


def _export(config, checkpoint, out, *options):
    return export_tool.main([str(config), str(checkpoint), str(out), '--verify-image',
                             str(COCO_IMAGE), '--exporter', 'torchscript', *options])


def test_export_writes_a_verified_file(checkpoint, tmp_path, capsys):
    out = tmp_path / 'toy_noflip.onnx'
    assert _export(TOY_CONFIG, checkpoint, out, '--no-flip') == 0
    assert [p.name for p in tmp_path.iterdir()] == [out.name]  # no temporary file left
    printed = capsys.readouterr().out
    assert f'wrote {out}' in printed and 'canvas 448x256' in printed
    assert 'max |difference| heatmaps' in printed and 'peaks 0' in printed
    model = onnx.load(str(out))
    assert METADATA_KEY in {p.key for p in model.metadata_props}
    estimator = OnnxPoseEstimator(out)
    assert estimator.settings.flip_test is False  # --no-flip overrides the config's flip test
    _, tags, _ = estimator.run_graph(estimator.preprocess(read_image(COCO_IMAGE))[0])
    assert tags.shape == (1, 17, 256, 448, 1)  # the tags of one view


def _bad_config(tmp_path):
    path = tmp_path / 'broken.py'
    path.write_text('model = dict(type="NoSuchModel")\n')
    return path


@pytest.mark.parametrize('case, message', [
    ('missing checkpoint', 'checkpoint not found'),
    ('config of another model', 'does not fit config'),
    ('config that builds nothing', 'cannot build a model from config'),
    ('output folder missing', 'output folder does not exist'),
    ('output is a folder', 'output path is a folder'),
])
def test_bad_inputs_write_nothing(checkpoint, tmp_path, capsys, case, message):
    config, ckpt, out = TOY_CONFIG, checkpoint, tmp_path / 'out' / 'model.onnx'
    (tmp_path / 'out').mkdir()
    if case == 'missing checkpoint':
        ckpt = tmp_path / 'missing.pth'
    elif case == 'config of another model':
        config = W32_CONFIG
    elif case == 'config that builds nothing':
        config = _bad_config(tmp_path)
    elif case == 'output folder missing':
        out = tmp_path / 'nowhere' / 'model.onnx'
    else:
        out.mkdir()
    before = sorted(tmp_path.rglob('*'))
    assert _export(config, ckpt, out) == 1
    assert message in capsys.readouterr().err
    assert sorted(tmp_path.rglob('*')) == before


def test_a_graph_that_differs_is_refused(checkpoint, tmp_path, capsys, monkeypatch):
    """The exported graph gets a shifted bias: verification names the output, nothing is
    written and an existing file keeps its content."""
    real_export_graph = onnx_export.export_graph

    def export_shifted(graph, *args):
        with torch.no_grad():
            graph.model.head.final_layers[1].bias += 0.01
        try:
            return real_export_graph(graph, *args)
        finally:
            with torch.no_grad():
                graph.model.head.final_layers[1].bias -= 0.01

    monkeypatch.setattr(onnx_export, 'export_graph', export_shifted)
    out = tmp_path / 'model.onnx'
    out.write_bytes(b'previous export')
    assert _export(TOY_CONFIG, checkpoint, out) == 1
    error = capsys.readouterr().err
    # Level 1 heatmaps + 0.01, averaged with the unchanged level 0: + 0.005 everywhere.
    assert ("output 'heatmaps' differs from the eager model by up to 0.005 (tolerance 0.0001); "
            'nothing written') in error
    assert [p.name for p in tmp_path.iterdir()] == ['model.onnx']
    assert out.read_bytes() == b'previous export'
