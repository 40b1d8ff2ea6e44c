"""Tests of tools/check_official_parser.py: our parsers against the official group.py.

They need the official code: a checkout or git mirror of HRNet/HigherHRNet-Human-Pose-Estimation
at ``$HIGHERHRNET_OFFICIAL`` or at the default mirror path below; without it they skip.
"""
import os
import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from _tools import load_tool  # noqa: E402

DEFAULT_OFFICIAL = (Path(__file__).resolve().parents[3] / '.mirror' /
                    'HRNet+HigherHRNet-Human-Pose-Estimation' / 'repo')

check_tool = load_tool('check_official_parser')
pytestmark = pytest.mark.usefixtures('one_torch_thread')


@pytest.fixture(scope='module')
def official_path() -> Path:
    path = Path(os.environ.get('HIGHERHRNET_OFFICIAL', DEFAULT_OFFICIAL))
    try:
        check_tool.official_source(path)
    except (FileNotFoundError, OSError) as error:
        pytest.skip(f'official HigherHRNet code not available ({error}); set '
                    f'HIGHERHRNET_OFFICIAL to a checkout or mirror of '
                    f'HRNet/HigherHRNet-Human-Pose-Estimation')
    return path


def test_our_parsers_equal_the_official_one(official_path, capsys):
    assert check_tool.main(['--official', str(official_path), '--cases', '20']) == 0
    lines = capsys.readouterr().out.splitlines()
    total = len(check_tool.hand_worked_cases()) + 20
    assert lines[-1] == f'{total} cases, {total} equal'


def test_a_mismatch_fails_the_check(official_path, monkeypatch, capsys):
    parse_fast = check_tool.parse_fast

    def shifted(*args, **kwargs):  # every keypoint a quarter pixel off
        keypoints, keypoint_scores, scores = parse_fast(*args, **kwargs)
        return keypoints + np.float32(0.25), keypoint_scores, scores

    monkeypatch.setattr(check_tool, 'parse_fast', shifted)
    assert check_tool.main(['--official', str(official_path), '--cases', '2']) == 1
    out = capsys.readouterr().out
    assert 'MISMATCH tag distance 0.99: parse_reference ok, parse_fast differs' in out


def test_official_source_names_what_is_missing(tmp_path):
    with pytest.raises(FileNotFoundError, match='holds no lib/core/group.py'):
        check_tool.official_source(tmp_path)
