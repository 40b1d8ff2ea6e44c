"""The deployment path imports and runs with torch absent (a subprocess that blocks it)."""
import json
import sys
from pathlib import Path

import numpy as np

from higherhrnet_plugin.deploy import OnnxPoseEstimator, read_image

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from _no_torch import run_without_torch  # noqa: E402
from _onnx_models import OCHUMAN_IMAGE  # noqa: E402

PREDICT = '''
import json, sys
from higherhrnet_plugin.deploy import OnnxPoseEstimator, read_image
try:
    import torch
    blocked = False
except ImportError:
    blocked = True
results = {}
for mode in ('fast', 'reference'):
    estimator = OnnxPoseEstimator(sys.argv[1], threads=1, decode_mode=mode)
    results[mode] = [a.tolist() for a in estimator(read_image(sys.argv[2]))]
heavy = sorted({m.split('.')[0] for m in sys.modules} & {'torch', 'mmcv', 'mmengine', 'mmpose'})
print(json.dumps(dict(blocked=blocked, heavy=heavy, results=results)))
'''


def test_deploy_runs_without_torch(toy_onnx):
    done = run_without_torch(PREDICT, [str(toy_onnx), str(OCHUMAN_IMAGE)])
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert report['blocked'] and report['heavy'] == []
    for mode in ('fast', 'reference'):
        expected = OnnxPoseEstimator(toy_onnx, threads=1, decode_mode=mode)(
            read_image(OCHUMAN_IMAGE))
        assert len(expected[2]) > 0
        for got, want in zip(report['results'][mode], expected):
            np.testing.assert_array_equal(np.array(got, want.dtype), want)


def test_plugin_import_without_torch_registers_nothing():
    done = run_without_torch('import higherhrnet_plugin, higherhrnet_plugin.codecs as codecs\n'
                             'print(higherhrnet_plugin.__all__, codecs.__all__)')
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.strip() == "['__version__'] []"
