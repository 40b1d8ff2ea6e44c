"""Tests of tools/infer_onnx.py: demo's JSON from an .onnx file alone, with or without torch."""
import json
import sys
from pathlib import Path

import numpy as np
import onnx
import pytest

from higherhrnet_plugin.deploy.export import export_onnx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from _no_torch import run_without_torch  # noqa: E402
from _onnx_models import COCO_IMAGE, SHARED_DATA, TOY_CONFIG, random_checkpoint  # noqa: E402
from _tools import TOOLS, load_tool  # noqa: E402

infer = load_tool('infer_onnx')
pytestmark = pytest.mark.usefixtures('one_torch_thread')


@pytest.fixture(scope='module')
def toy(tmp_path_factory):
    """A seeded random toy checkpoint and its export (flip test, as the config)."""
    root = tmp_path_factory.mktemp('toy')
    checkpoint = random_checkpoint(TOY_CONFIG, root / 'toy.pth')
    export_onnx(TOY_CONFIG, checkpoint, root / 'toy.onnx', COCO_IMAGE, exporter='torchscript')
    return checkpoint, root / 'toy.onnx'


@pytest.fixture(scope='module')
def coco_run(toy, tmp_path_factory):
    """infer_onnx.py on the COCO folder, every person kept."""
    out = tmp_path_factory.mktemp('infer')
    assert infer.main([str(SHARED_DATA / 'coco'), str(toy[1]), '--out-dir', str(out),
                       '--score-thr', '0', '--threads', '1']) == 0
    return out


def _results(folder):
    return {p.name: json.loads(p.read_text()) for p in sorted(folder.glob('*.json'))}


def test_same_json_as_demo(toy, coco_run, tmp_path):
    demo_out = tmp_path / 'demo'
    assert load_tool('demo').main([
        str(SHARED_DATA / 'coco'), '--config', str(TOY_CONFIG), '--checkpoint', str(toy[0]),
        '--out-dir', str(demo_out), '--device', 'cpu', '--score-thr', '0'
    ]) == 0
    ours, demo = _results(coco_run), _results(demo_out)
    assert list(ours) == list(demo) == [
        '000000000785.json', '000000040083.json', '000000196141.json', '000000197388.json'
    ]
    for name in ours:
        assert len(ours[name]) == len(demo[name]) == 30
        for mine, theirs in zip(ours[name], demo[name]):
            assert mine['image_id'] == theirs['image_id'] == int(name[:-5])
            assert mine['category_id'] == theirs['category_id'] == 1
            # keypoints rounded to 3 decimals: equal, or 0.001 apart at a rounding boundary
            np.testing.assert_allclose(mine['keypoints'], theirs['keypoints'], rtol=0,
                                       atol=1.0001e-3)
            assert abs(mine['score'] - theirs['score']) < 1e-6


def test_score_threshold_keeps_the_best_persons(toy, coco_run, tmp_path):
    everyone = _results(coco_run)['000000000785.json']
    threshold = sorted((r['score'] for r in everyone), reverse=True)[2]
    assert infer.main([str(COCO_IMAGE), str(toy[1]), '--out-dir', str(tmp_path),
                       '--score-thr', repr(threshold), '--flip']) == 0
    kept = _results(tmp_path)['000000000785.json']
    assert kept == [r for r in everyone if r['score'] >= threshold] and len(kept) >= 3


def test_runs_without_torch(toy, coco_run, tmp_path):
    code = 'import runpy, sys\nsys.argv = sys.argv[1:]\nrunpy.run_path(sys.argv[0], ' \
           "run_name='__main__')"
    done = run_without_torch(code, [str(TOOLS / 'infer_onnx.py'), str(SHARED_DATA / 'coco'),
                                    str(toy[1]), '--out-dir', str(tmp_path), '--score-thr', '0',
                                    '--threads', '1'])
    assert done.returncode == 0, done.stderr[-3000:]
    assert _results(tmp_path) == _results(coco_run)


def _not_ours(path):
    """A valid ONNX model without the deployment metadata."""
    node = onnx.helper.make_node('Identity', ['inputs'], ['heatmaps'])
    value = onnx.helper.make_tensor_value_info('inputs', onnx.TensorProto.FLOAT, [1])
    output = onnx.helper.make_tensor_value_info('heatmaps', onnx.TensorProto.FLOAT, [1])
    onnx.save(onnx.helper.make_model(onnx.helper.make_graph([node], 'g', [value], [output])),
              str(path))
    return path


@pytest.mark.parametrize('case, message', [
    ('text file as model', 'is not a readable ONNX model'),
    ('onnx file of another model', 'is not an exported HigherHRNet'),
    ('missing model', 'model file not found'),
    ('--no-flip on a flip export', 'export again with --no-flip'),
    ('missing input', 'input not found'),
    ('input that is not an image', 'not an image (cannot decode it)'),
])
def test_bad_inputs_write_nothing(toy, tmp_path, capsys, case, message):
    model, image, options = toy[1], COCO_IMAGE, []
    if case == 'text file as model':
        model = tmp_path / 'model.onnx'
        model.write_text('not a model')
    elif case == 'onnx file of another model':
        model = _not_ours(tmp_path / 'other.onnx')
    elif case == 'missing model':
        model = tmp_path / 'missing.onnx'
    elif case == '--no-flip on a flip export':
        options = ['--no-flip']
    elif case == 'missing input':
        image = tmp_path / 'missing.jpg'
    else:
        image = tmp_path / 'notes.jpg'
        image.write_text('not a picture')
    out = tmp_path / 'out'
    assert infer.main([str(image), str(model), '--out-dir', str(out), *options]) == 1
    assert message in capsys.readouterr().err
    assert not out.exists()
