"""Parity check of our grouping against the official HigherHRNet ``HeatmapParser``.

Usage::

    python tools/check_official_parser.py [--official PATH] [--cases N] [--seed S]

PATH (default: ``$HIGHERHRNET_OFFICIAL``) is a checkout, or a bare git mirror, of
HRNet/HigherHRNet-Human-Pose-Estimation. Its ``lib/core/group.py`` (from the working tree, or
``git show HEAD:lib/core/group.py``; it needs torch and munkres only) is loaded at run time
as a module of its own; nothing of it is copied into this repository. Each case builds maps,
runs the official ``HeatmapParser.parse`` (adjust and refine on, a parser built from a small
namespace standing in for its yacs config) and compares with our ``parse_reference`` and
``parse_fast(refine_search='full')``:

- hand-worked cases: thresholds, ties, refine rules, key collisions, the ``max_num_people``
  cut, a value term that outweighs the distances, empty maps;
- N seeded random maps: K = 17 or 14, one or two tag channels, 1 to 8 persons of Gaussian
  peaks with missing joints and background noise, tags on a coarse grid (so distances of
  exactly 0.5, 1.0, 1.5 and tied assignments are common), persons 1.0 +- 0.05 apart in tag,
  one-channel persons of 8 or more joints whose ``np.mean`` differs from a sequential sum.

``parse_reference`` must equal the official output bit for bit and in the same person order;
``parse_fast`` bit for bit, in any person order (equal heatmap values may come out of
``torch.topk`` in another order). Prints one line per mismatch, per-parser counts and the
summary ``N cases, M equal``; exits 1 on any mismatch.
"""
import argparse
import os
import subprocess
import sys
import types
from pathlib import Path
from typing import Callable, Iterator, List, NamedTuple, Optional, Sequence, Tuple

import numpy as np
import torch

from higherhrnet_plugin.codecs.utils.grouping_common import default_keypoint_order
from higherhrnet_plugin.codecs.utils.grouping_fast import parse_fast
from higherhrnet_plugin.codecs.utils.grouping_reference import parse_reference

GROUP_PY = 'lib/core/group.py'
Result = Tuple[np.ndarray, np.ndarray, np.ndarray]  # keypoints, keypoint scores, scores


class Case(NamedTuple):
    """Maps and parser options of one comparison."""
    name: str
    heatmaps: np.ndarray  # float32 (K, H, W)
    tags: np.ndarray  # float32 (K, H, W, L)
    detection_threshold: float = 0.1
    tag_threshold: float = 1.0
    max_num_people: int = 30


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--official',
                        type=Path,
                        default=os.environ.get('HIGHERHRNET_OFFICIAL'),
                        help='checkout or bare mirror of HRNet/HigherHRNet-Human-Pose-Estimation '
                        '(default: $HIGHERHRNET_OFFICIAL)')
    parser.add_argument('--cases', type=int, default=200, help='number of random maps')
    parser.add_argument('--seed', type=int, default=0, help='seed of the random maps')
    args = parser.parse_args(argv)
    if args.official is None:
        parser.error('give --official PATH or set HIGHERHRNET_OFFICIAL')
    return args


def official_source(path: Path) -> str:
    """Text of ``lib/core/group.py`` in a checkout or a (bare) git repository at ``path``."""
    if (path / GROUP_PY).is_file():
        return (path / GROUP_PY).read_text()
    try:
        shown = subprocess.run(
            ['git', '--git-dir', str(path), 'show', f'HEAD:{GROUP_PY}'],
            capture_output=True,
            text=True)
    except FileNotFoundError:  # no git on this machine
        shown = subprocess.CompletedProcess([], 1, '', 'git not found')
    if shown.returncode != 0:
        raise FileNotFoundError(f'{path} holds no {GROUP_PY}: neither a checkout nor a git '
                                f'repository of HRNet/HigherHRNet-Human-Pose-Estimation '
                                f'({shown.stderr.strip()})')
    return shown.stdout


def load_official(path: Path) -> types.ModuleType:
    """The official ``group.py`` as a fresh module (``HeatmapParser``, ``match_by_tag``)."""
    module = types.ModuleType('official_group')
    module.__file__ = str(path / GROUP_PY)
    exec(compile(official_source(path), module.__file__, 'exec'), module.__dict__)
    return module


def official_config(case: Case, nms_kernel: int = 5) -> types.SimpleNamespace:
    """The parts of the official yacs config that ``HeatmapParser`` reads."""
    space = types.SimpleNamespace
    return space(DATASET=space(NUM_JOINTS=case.heatmaps.shape[0],
                               MAX_NUM_PEOPLE=case.max_num_people,
                               WITH_CENTER=False),
                 MODEL=space(TAG_PER_JOINT=True),
                 TEST=space(DETECTION_THRESHOLD=case.detection_threshold,
                            TAG_THRESHOLD=case.tag_threshold,
                            USE_DETECTION_VAL=True,
                            IGNORE_TOO_MUCH=False,
                            IGNORE_CENTER=True,
                            NMS_KERNEL=nms_kernel,
                            NMS_PADDING=nms_kernel // 2))


def run_official(official: types.ModuleType, case: Case) -> Result:
    """The official ``parse`` (adjust, refine) of one image, as our (keypoints, scores, scores)."""
    parser = official.HeatmapParser(official_config(case))
    det = torch.from_numpy(case.heatmaps)[None]
    tag = torch.from_numpy(case.tags)[None]
    grouped, scores = parser.parse(det, tag, True, True)
    people = np.asarray(grouped[0], np.float32)
    if people.size == 0:
        people = np.zeros((0, case.heatmaps.shape[0], 3), np.float32)
    return people[:, :, :2], people[:, :, 2], np.asarray(scores, np.float32).reshape(-1)


def run_ours(case: Case) -> Tuple[Result, Result]:
    """``parse_reference`` and ``parse_fast(refine_search='full')`` with the official options
    (top-k = ``max_num_people``, as the official ``top_k`` takes)."""
    options = dict(topk=case.max_num_people,
                   detection_threshold=case.detection_threshold,
                   tag_threshold=case.tag_threshold,
                   max_num_people=case.max_num_people)
    return (parse_reference(case.heatmaps, case.tags, **options),
            parse_fast(case.heatmaps, case.tags, refine_search='full', **options))


def same(ours: Result, official: Result, any_order: bool = False) -> bool:
    """Bit-equal results, persons in the same order (or in any order)."""
    if any(a.shape != b.shape for a, b in zip(ours, official)):
        return False
    if any_order:
        ours, official = _by_person(ours), _by_person(official)
    return all(np.array_equal(a, b) for a, b in zip(ours, official))


def _by_person(result: Result) -> Result:
    """The persons of ``result`` sorted by their keypoints, then scores."""
    keypoints, keypoint_scores, scores = result
    rows = np.concatenate(
        [keypoints[:, :, 0], keypoints[:, :, 1], keypoint_scores, scores[:, None]], axis=1)
    order = np.lexsort(rows.T[::-1])
    return keypoints[order], keypoint_scores[order], scores[order]


# --- cases ---


def peak_case(name: str,
              shape: Tuple[int, int, int, int],
              peaks: Sequence[tuple],
              tag_fill: float = 0.0,
              **options) -> Case:
    """Zero heatmaps of ``shape`` (K, H, W, L) with ``peaks`` (k, x, y, value, tag...)."""
    heatmaps = np.zeros(shape[:3], np.float32)
    tags = np.full(shape, tag_fill, np.float32)
    for k, x, y, value, *tag in peaks:
        heatmaps[k, y, x] = value
        tags[k, y, x] = tag
    return Case(name, heatmaps, tags, **options)


def hand_worked_cases() -> List[Case]:
    """Small maps with one rule each (the hand-worked cases of the reference parser tests)."""
    below = float(np.nextafter(np.float32(0.1), np.float32(0)))
    spots = [(x, y) for y in range(2, 40, 4) for x in range(2, 64, 4)]
    crowd = [(0, *spots[i], 0.9 - 0.01 * i, 2.0 * i) for i in range(30)]
    crowd += [(1, *spots[30 + i], 0.9 - 0.01 * i, 100 + 2.0 * i) for i in range(30)]
    crowd += [(2, *spots[60], 0.5, 100.25)]
    cases = [
        peak_case(f'tag distance {tag}', (2, 8, 8, 1), [(0, 1, 1, 0.8, 0.0), (1, 5, 4, 0.6, tag)])
        for tag in (0.99, -0.99, 1.0, 1.5)
    ]
    cases += [
        peak_case('detection threshold in float64', (2, 8, 8, 1), [(0, 1, 1, 0.1, 0.0),
                                                                   (1, 5, 5, below, 3.0)]),
        peak_case('refine after scoring', (2, 8, 8, 1),
                  [(0, 2, 2, 0.9, 0.0), (1, 6, 3, 0.05, 0.2), (1, 1, 6, 0.09, 3.0),
                   (1, 7, 3, 0.02, 0.2), (1, 5, 3, 0.01, 0.2)],
                  tag_fill=0.2),
        peak_case('refine first maximum, zero map', (3, 8, 8, 1), [(0, 3, 3, 0.9, 0.0),
                                                                   (1, 6, 1, 0.05, 0.0),
                                                                   (1, 2, 4, 0.05, 0.0)]),
        peak_case('key collision, first keypoint', (2, 8, 8, 2), [(0, 1, 1, 0.9, 1.0, 0.0),
                                                                  (0, 6, 6, 0.8, 1.0, 5.0)]),
        peak_case('values outweigh distances', (2, 8, 12, 1), [(0, 1, 1, 1.0, 0.0),
                                                               (1, 2, 5, 150.0, 0.9),
                                                               (1, 9, 5, 0.5, 0.4)]),
        peak_case('no candidates', (17, 8, 8, 2), []),
        peak_case('max_num_people cut', (3, 40, 64, 1), crowd, max_num_people=30),
        peak_case('max_num_people 31', (3, 40, 64, 1), crowd, max_num_people=31),
    ]
    for first_tag in (0.0, 0.5):
        cases.append(
            peak_case(f'key collision resets tags ({first_tag})', (3, 8, 8, 2),
                      [(0, 1, 1, 0.9, 0.0, 0.0), (1, 4, 1, 0.8, first_tag, 3.0),
                       (2, 6, 6, 0.7, 0.0, 3.0), (2, 2, 6, 0.6, 0.0, 3.0)]))
    return cases


def random_case(rng: np.random.Generator, index: int) -> Case:
    """Gaussian persons with missing joints, sub-threshold noise, a few spurious peaks, and
    coarse (every third case) or near-threshold tags."""
    num_keypoints = 17 if index % 4 else 14
    tag_dim = 1 + index % 2
    height, width = rng.integers(24, 65, 2)
    ys, xs = np.mgrid[0:height, 0:width] + 0.5
    heatmaps = rng.random((num_keypoints, height, width), dtype=np.float32) * 0.09
    tags = rng.normal(0, 3, (num_keypoints, height, width, tag_dim))
    spacing = rng.choice([1.0, 2.0, 3.0]) + rng.uniform(-0.05, 0.05)
    for person in range(rng.integers(1, 9)):
        for k in np.flatnonzero(rng.random(num_keypoints) > 0.2):
            x, y = rng.uniform(0, width), rng.uniform(0, height)
            squared = (xs - x)**2 + (ys - y)**2
            heatmaps[k] = np.maximum(heatmaps[k], rng.uniform(0.05, 1.0) * np.exp(-squared / 8))
            tags[k][squared < 9] = spacing * person + rng.normal(0, 0.3, tag_dim)
    for k, y, x in zip(rng.integers(0, num_keypoints, 8), rng.integers(0, height, 8),
                       rng.integers(0, width, 8)):
        heatmaps[k, y, x] = rng.uniform(0.1, 0.6)  # spurious: more candidates than persons
    if index % 3 == 0:
        tags = np.round(tags * 4) / 4  # a coarse grid: exact distances 0.5, 1.0, 1.5, ties
    return Case(f'random {index}', heatmaps, tags.astype(np.float32))


def mean_boundary_case(rng: np.random.Generator, index: int) -> Case:
    """One tag channel: a person of n >= 8 joints whose ``np.mean`` (pairwise) differs from a
    sequential float32 mean, and a candidate exactly 1.0 from the official mean, on the side
    of the sequential one."""
    order = default_keypoint_order(17)
    for _ in range(1000):
        n = int(rng.integers(8, 17))
        member_tags = (1 + 0.4 * rng.random(n)).astype(np.float32)
        mean = np.mean(member_tags[:, None], axis=0)[0]
        sequential = np.float32(0)
        for tag in member_tags:
            sequential += tag
        step = np.float32(-1 if sequential / np.float32(n) < mean else 1)
        if sequential / np.float32(n) != mean and float(mean + step) - float(mean) == step:
            break
    peaks = [(k, 3 + 4 * i, 3, 0.9, tag) for i, (k, tag) in enumerate(zip(order, member_tags))]
    peaks.append((order[n], 3, 9, 0.8, mean + step))
    return peak_case(f'mean boundary {index}', (17, 14, 72, 1), peaks)


def all_cases(num_random: int, seed: int) -> Iterator[Case]:
    """The hand-worked cases, then the seeded random and mean-boundary ones."""
    yield from hand_worked_cases()
    rng = np.random.default_rng(seed)
    for index in range(num_random):
        yield (mean_boundary_case if index % 10 == 9 else random_case)(rng, index)


# --- run ---


def check(cases: Iterator[Case],
          official: types.ModuleType,
          report: Callable[[str], None] = print) -> Tuple[int, int, int, int]:
    """Case count, reference-equal, fast-equal and both-equal counts; reports mismatches."""
    total = reference_equal = fast_equal = both_equal = 0
    for case in cases:
        expected = run_official(official, case)
        reference, fast = run_ours(case)
        ok_reference = same(reference, expected)
        ok_fast = same(fast, expected, any_order=True)
        total += 1
        reference_equal += ok_reference
        fast_equal += ok_fast
        both_equal += ok_reference and ok_fast
        if not (ok_reference and ok_fast):
            report(f'MISMATCH {case.name}: parse_reference {"ok" if ok_reference else "differs"}'
                   f', parse_fast {"ok" if ok_fast else "differs"}')
    return total, reference_equal, fast_equal, both_equal


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = parse_args(argv)
    official = load_official(args.official)
    total, reference_equal, fast_equal, both_equal = check(all_cases(args.cases, args.seed),
                                                           official)
    print(f'parse_reference: {reference_equal} of {total} equal to the official parser '
          f'(bit for bit, same person order)')
    print(f"parse_fast(refine_search='full'): {fast_equal} of {total} equal "
          f'(bit for bit, any person order)')
    print(f'{total} cases, {both_equal} equal')
    return 0 if both_equal == total else 1


if __name__ == '__main__':
    sys.exit(main())
