"""tools/benchmark.py --sections onnx: eager torch and onnxruntime side by side (quick run)."""
import json
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from _onnx_models import TOY_CONFIG  # noqa: E402
from _tools import load_tool  # noqa: E402

benchmark = load_tool('benchmark')
pytestmark = pytest.mark.usefixtures('one_torch_thread')
STAGES = ('preprocess', 'graph', 'decode', 'back_projection', 'end_to_end')


def test_quick_onnx_section(tmp_path, capsys):
    """The toy model keeps it short; the default config is W32-512."""
    out = tmp_path / 'results.json'
    assert benchmark.main(['--quick', '--sections', 'onnx', '--config', str(TOY_CONFIG),
                           '--threads', '1', '--out', str(out)]) == 0
    results = json.loads(out.read_text())
    assert set(results) == {'environment', 'deploy', 'deploy_summary', 'targets'}
    rows = results['deploy']
    assert [(r['flip'], r['runtime']) for r in rows] == [(True, 'torch'), (True, 'onnxruntime'),
                                                         (False, 'torch'),
                                                         (False, 'onnxruntime')]
    for row in rows:
        assert row['image'] == 'coco/000000000785.jpg' and row['canvas'] == [448, 256]
        assert row['max_map_difference'] < 1e-4  # the same maps from both runtimes
        assert all(row[f'{stage}_ms'] > 0 for stage in STAGES)
    assert rows[0]['persons'] == rows[1]['persons'] and rows[2]['persons'] == rows[3]['persons']
    summary = results['deploy_summary']
    assert [(r['flip'], r['runtime'], r['images']) for r in summary] == [
        (True, 'torch', 1), (True, 'onnxruntime', 1), (False, 'torch', 1),
        (False, 'onnxruntime', 1)
    ]
    for row, first in zip(summary, rows):
        assert row['end_to_end_ms'] == first['end_to_end_ms']  # one image: mean = its time
        assert row['images_per_second'] == pytest.approx(1e3 / row['end_to_end_ms'])
    assert summary[0]['speedup'] == 1.0
    assert summary[1]['speedup'] == pytest.approx(rows[0]['end_to_end_ms'] /
                                                  rows[1]['end_to_end_ms'])
    printed = capsys.readouterr().out
    assert '## Eager torch vs onnxruntime (mean ms per image)' in printed
    assert '| flip | runtime | images | pre-process | network + aggregation |' in printed


def test_onnx_is_not_a_default_section():
    args = benchmark.parse_args([])
    assert 'onnx' in benchmark.SECTIONS and 'onnx' not in args.sections
