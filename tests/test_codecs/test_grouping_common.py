"""What both parsers share: non-finite maps refused, costs, and grouping without torch."""
import json
import subprocess
import sys
from functools import partial
from pathlib import Path

import numba
import numpy as np
import pytest

from higherhrnet_plugin.codecs.utils.grouping_common import numpy_sum, official_costs
from higherhrnet_plugin.codecs.utils.grouping_fast import parse_fast
from higherhrnet_plugin.codecs.utils.grouping_reference import parse_reference

PACKAGE = Path(__file__).resolve().parents[2] / 'higherhrnet_plugin'

# Imports the grouping modules with torch made unimportable and without running the package
# __init__ files (they register torch models), then decodes two persons with parse_fast.
TORCH_FREE = f'''
import json, sys, types
sys.modules['torch'] = None  # "import torch" now raises ImportError
for name, path in [('higherhrnet_plugin', {str(PACKAGE)!r}),
                   ('higherhrnet_plugin.codecs', {str(PACKAGE / 'codecs')!r}),
                   ('higherhrnet_plugin.codecs.utils', {str(PACKAGE / 'codecs' / 'utils')!r})]:
    module = types.ModuleType(name)
    module.__path__ = [path]
    sys.modules[name] = module
import numpy as np
from higherhrnet_plugin.codecs.utils import grouping_reference
from higherhrnet_plugin.codecs.utils.grouping_fast import parse_fast
heatmaps = np.zeros((2, 8, 8), np.float32)
tags = np.zeros((2, 8, 8, 1), np.float32)
heatmaps[0, 1, 1], heatmaps[1, 6, 6], tags[1, 6, 6] = 0.9, 0.8, 2.0
keypoints, scores, instance_scores = parse_fast(heatmaps, tags, refine_search='full')
print(json.dumps(scores.tolist()))
'''


def test_grouping_runs_without_torch():
    result = subprocess.run([sys.executable, '-c', TORCH_FREE],
                            capture_output=True,
                            text=True,
                            timeout=120)
    assert result.returncode == 0, result.stderr
    # A (keypoint 0, tag 0) and B (keypoint 1, tag 2); refine gives B keypoint 0 (the only
    # peak) but A nothing (the official winner is a zero pixel).
    np.testing.assert_array_equal(np.float32(json.loads(result.stdout)),
                                  np.float32([[0.9, 0], [0.9, 0.8]]))


@pytest.mark.parametrize('bad', [np.nan, np.inf])
@pytest.mark.parametrize('parse', [parse_reference, parse_fast])
def test_non_finite_heatmaps_are_refused(parse, bad):
    heatmaps, tags = np.zeros((3, 5, 6), np.float32), np.zeros((3, 5, 6, 2), np.float32)
    heatmaps.reshape(-1)[[0, 7, 41]] = bad
    with pytest.raises(ValueError, match='heatmaps hold 3 non-finite value'):
        parse(heatmaps, tags)


@pytest.mark.parametrize('bad', [np.nan, np.inf, -np.inf])
@pytest.mark.parametrize('parse', [parse_reference, parse_fast])
def test_non_finite_candidate_tags_are_refused(parse, bad):
    heatmaps, tags = np.zeros((3, 5, 6), np.float32), np.zeros((3, 5, 6, 2), np.float32)
    heatmaps[1, 2, 3] = 0.5
    tags[1, 2, 3, 1], tags[2, 4, 5, 0] = bad, bad
    with pytest.raises(ValueError, match='tags hold 2 non-finite value'):
        parse(heatmaps, tags)


def test_fast_refuses_non_finite_tags_its_refine_reads():
    # Person A (keypoint 0) misses keypoint 1, whose map is 0 everywhere: every pixel of it
    # can win the full search, so it reads (and refuses) the NaN; the official argmax would
    # return that pixel. The reference refuses any NaN; 'peaks' reads no tag of map 1 (no
    # positive peak) and decodes.
    heatmaps, tags = np.zeros((2, 6, 6), np.float32), np.zeros((2, 6, 6, 1), np.float32)
    heatmaps[0, 2, 2] = 0.9
    tags[1, 4, 4] = np.nan
    for parse in (parse_reference, partial(parse_fast, refine_search='full')):
        with pytest.raises(ValueError, match='tags.* hold 1 non-finite value'):
            parse(heatmaps, tags)
    keypoints, scores, _ = parse_fast(heatmaps, tags)
    np.testing.assert_array_equal(scores, np.float32([[0.9, 0]]))


@pytest.mark.parametrize('parse', [parse_reference, parse_fast])
def test_negative_infinite_heat_is_refused_by_the_reference_only(parse):
    heatmaps, tags = np.zeros((2, 6, 6), np.float32), np.zeros((2, 6, 6, 1), np.float32)
    heatmaps[0, 2, 2], heatmaps[1, 5, 5] = 0.9, -np.inf
    if parse is parse_reference:
        with pytest.raises(ValueError, match='heatmaps hold 1 non-finite value'):
            parse(heatmaps, tags)
    else:  # -inf never passes the threshold and never wins the refine
        np.testing.assert_array_equal(parse(heatmaps, tags)[1], np.float32([[0.9, 0]]))


def test_official_costs():
    # round(D) * 100 - value (half to even), then 1e10 columns up to a square matrix.
    distances = np.array([[0.5, 1.5], [2.49, 0.1], [1.0, 3.7]])
    costs = official_costs(distances, np.float32([0.5, 0.25, 0.125]))
    np.testing.assert_array_equal(
        costs, [[-0.5, 199.5, 1e10], [199.75, -0.25, 1e10], [99.875, 399.875, 1e10]])
    assert official_costs(distances[:1], np.float32([0.5])).shape == (1, 2)


@pytest.mark.parametrize('dtype', [np.float32, np.float64])
def test_sums_equal_numpy_sums_of_contiguous_runs(dtype):
    rng = np.random.default_rng(0)
    differs = 0
    for _ in range(2000):
        count = int(rng.integers(1, 129))
        # widely ranging magnitudes and both signs: the order of summation shows in the bits
        terms = (rng.normal(size=count) * 10.0**rng.integers(-3, 4, size=count)).astype(dtype)
        ours = numpy_sum(terms)
        assert ours == np.add.reduce(terms)
        differs += ours != sum(terms[1:], terms[0])  # numpy's sum is not a running sum
    assert differs > 0
    # accumulated in the dtype of the terms (numba returns a Python float to the caller)
    returns = {s.args[0].dtype: s.return_type for s in numpy_sum.nopython_signatures}
    assert returns[numba.from_dtype(np.dtype(dtype))] == numba.from_dtype(np.dtype(dtype))
