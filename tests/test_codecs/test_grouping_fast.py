"""The fast parser against the reference one, its exact shortcuts, and an end-to-end check."""
import json
from pathlib import Path
from typing import Tuple

import numpy as np
import pytest
import torch
from scipy import ndimage

from higherhrnet_plugin.codecs.utils.grouping_candidates import (find_candidates,
                                                                 float32_threshold)
from higherhrnet_plugin.codecs.utils.grouping_common import official_candidates
from higherhrnet_plugin.codecs.utils import grouping_fast
from higherhrnet_plugin.codecs.utils.grouping_fast import parse_fast
from higherhrnet_plugin.codecs.utils.grouping_reference import parse_reference

DATA = Path(__file__).parents[2] / '..' / 'shared' / 'data'
Maps = Tuple[np.ndarray, np.ndarray]


def gaussian_maps(keypoints: np.ndarray,
                  amplitudes: np.ndarray,
                  height: int,
                  width: int,
                  sigma: float = 2.0) -> np.ndarray:
    """(K, H, W) maximum of Gaussians centred at continuous (x, y) (pixel i spans [i, i+1))."""
    num_keypoints = keypoints.shape[1]
    heatmaps = np.zeros((num_keypoints, height, width), np.float32)
    radius = int(4 * sigma) + 1
    for person, person_amplitudes in zip(keypoints, amplitudes):
        for k, ((x, y), amplitude) in enumerate(zip(person, person_amplitudes)):
            if amplitude <= 0:
                continue
            x0, y0 = max(int(x) - radius, 0), max(int(y) - radius, 0)
            x1, y1 = min(int(x) + radius + 1, width), min(int(y) + radius + 1, height)
            dx = np.arange(x0, x1) + 0.5 - x
            dy = np.arange(y0, y1) + 0.5 - y
            patch = amplitude * np.exp(-(dy[:, None]**2 + dx[None]**2) / (2 * sigma**2))
            window = heatmaps[k, y0:y1, x0:x1]
            np.maximum(window, patch.astype(np.float32), out=window)
    return heatmaps


def grid_maps(rng: np.random.Generator,
              num_persons: int,
              missing: float = 0.0,
              weak: float = 0.0,
              background: float = 0.0,
              spurious: int = 0,
              cell: int = 24,
              margin: float = 3.0,
              num_keypoints: int = 17,
              tag_dim: int = 2) -> Maps:
    """Well separated persons: one grid cell each, tags 2 apart (noise 0.05) over the cell.

    ``missing`` keypoints have no peak, ``weak`` ones a peak of 0.05 (below the detection
    threshold, for refine); ``spurious`` adds isolated peaks with random tags. Keypoints lie
    ``margin`` px or more inside their cell.
    """
    cols = int(np.ceil(np.sqrt(num_persons)))
    rows = int(np.ceil(num_persons / cols))
    cells = rng.permutation(rows * cols)[:num_persons]
    origins = np.stack([cells % cols, cells // cols], axis=1) * cell
    offsets = rng.uniform(margin, cell - margin, (num_persons, num_keypoints, 2))
    keypoints = origins[:, None] + offsets
    amplitudes = rng.uniform(0.3, 1.0, (num_persons, num_keypoints))
    draw = rng.random((num_persons, num_keypoints))
    amplitudes[draw < missing] = 0
    amplitudes[(draw >= missing) & (draw < missing + weak)] = 0.05
    heatmaps = gaussian_maps(keypoints, amplitudes, rows * cell, cols * cell)
    heatmaps += rng.random(heatmaps.shape, dtype=np.float32) * np.float32(background)
    cell_tags = np.full(rows * cols, -10.0)
    cell_tags[cells] = rng.permutation(num_persons) * 2.0 + rng.uniform(-0.2, 0.2, num_persons)
    tag_image = np.kron(cell_tags.reshape(rows, cols), np.ones((cell, cell)))
    tags = tag_image[None, :, :, None] + rng.normal(0, 0.05, heatmaps.shape + (tag_dim, ))
    tags = tags.astype(np.float32)
    for _ in range(spurious):
        k, y, x = rng.integers(num_keypoints), rng.integers(rows * cell), rng.integers(cols * cell)
        heatmaps[k, y, x] = max(heatmaps[k, y, x], rng.uniform(0.15, 0.6))
        tags[k, y, x] = rng.uniform(-3, 2 * num_persons + 3, tag_dim)
    return heatmaps, tags


def tangled_maps(rng: np.random.Generator,
                 num_persons: int,
                 height: int = 64,
                 width: int = 80) -> Maps:
    """Overlapping persons and tags from the nearest person centre: many tied assignments."""
    centres = rng.uniform(0, [width, height], (num_persons, 2))
    keypoints = np.clip(centres[:, None] + rng.normal(0, 10, (num_persons, 17, 2)), 0,
                        [width - 0.01, height - 0.01])
    heatmaps = gaussian_maps(keypoints, rng.uniform(0.3, 1.0, (num_persons, 17)), height, width)
    ys, xs = np.mgrid[0:height, 0:width] + 0.5
    nearest = ((xs[None] - centres[:, 0, None, None])**2 +
               (ys[None] - centres[:, 1, None, None])**2).argmin(axis=0)
    person_tags = rng.permutation(num_persons) * 2.0
    tags = person_tags[nearest][None, :, :, None] + rng.normal(0, 0.05, (17, height, width, 2))
    return heatmaps, tags.astype(np.float32)


def assert_same_persons(fast, reference):
    """Equal outputs up to the order of the persons."""
    assert [a.shape for a in fast] == [b.shape for b in reference]
    if len(reference[0]) == 0:
        return

    def order(result):
        keypoints, scores, _ = result
        rows = np.concatenate([keypoints.reshape(len(keypoints), -1), scores], axis=1)
        return np.lexsort(rows.T[::-1])

    for a, b in zip(fast, reference):
        np.testing.assert_array_equal(a[order(fast)], b[order(reference)])


def test_candidates_match_official_nms_topk():
    rng = np.random.default_rng(0)
    heatmaps = rng.random((5, 40, 50), dtype=np.float32)**4  # distinct values, many peaks
    heatmaps[0, 10, 10:12] = 2.0  # a plateau: both pixels are NMS peaks
    tags = rng.normal(0, 1, (5, 40, 50, 2)).astype(np.float32)
    values, locations, candidate_tags = official_candidates(heatmaps, tags, 5, 30)
    for threshold in (0.1, 0.5):
        for k, candidates in enumerate(find_candidates(heatmaps, tags, 5, 30, threshold)):
            kept = values[k] > threshold
            pixels = locations[k][kept] @ [1, 50]
            # fast orders equal values by pixel; torch.topk's order is unspecified (k = 0)
            ours, official = np.argsort(candidates.flat), np.argsort(pixels)
            np.testing.assert_array_equal(candidates.flat[ours], pixels[official])
            np.testing.assert_array_equal(candidates.values[ours], values[k][kept][official])
            np.testing.assert_array_equal(candidates.tags[ours], candidate_tags[k][kept][official])
            assert np.all(np.diff(candidates.values) <= 0)
            if k > 0:
                np.testing.assert_array_equal(candidates.flat, pixels)


@pytest.mark.parametrize('seed', range(12))
def test_fast_equals_reference_on_separated_persons(seed):
    rng = np.random.default_rng(seed)
    for num_persons in rng.integers(1, 31, 3):
        options = [
            dict(),
            dict(missing=0.2, weak=0.1),
            dict(missing=0.2, background=0.02),
            dict(weak=0.1, spurious=8)
        ][rng.integers(4)]
        heatmaps, tags = grid_maps(rng, num_persons, **options)
        reference = parse_reference(heatmaps, tags)
        assert len(reference[0]) >= num_persons
        assert_same_persons(parse_fast(heatmaps, tags, refine_search='full'), reference)


@pytest.mark.parametrize('seed', range(3))
def test_fast_equals_reference_on_tangled_persons(seed):
    # Tied assignments abound here: fast must defer to Munkres exactly where they matter.
    heatmaps, tags = tangled_maps(np.random.default_rng(seed), 12)
    assert_same_persons(parse_fast(heatmaps, tags, refine_search='full'),
                        parse_reference(heatmaps, tags))


@pytest.mark.parametrize('adjust, refine', [(False, False), (True, False), (False, True)])
def test_fast_equals_reference_without_adjust_or_refine(adjust, refine):
    heatmaps, tags = grid_maps(np.random.default_rng(7), 9, missing=0.2, weak=0.1)
    assert_same_persons(parse_fast(heatmaps, tags, adjust=adjust, refine=refine,
                                   refine_search='full'),
                        parse_reference(heatmaps, tags, adjust=adjust, refine=refine))


@pytest.mark.parametrize('first_tag', [0.0, 0.5])
def test_fast_replays_key_collisions(first_tag):
    # A new person whose first tag equals an existing person's key lands in that person
    # and resets its tags (hand-worked in test_grouping_reference.py). Here keypoint 2 has two
    # candidates with tag (0, 3): the first joins (A with first_tag 0, else B), the second
    # starts a person keyed 0.0, which is A: it overwrites A's keypoint 2 in the same step.
    heatmaps = np.zeros((3, 8, 8), np.float32)
    tags = np.zeros((3, 8, 8, 2), np.float32)
    for k, x, y, value, tag in [(0, 1, 1, 0.9, (0.0, 0.0)), (1, 4, 1, 0.8, (first_tag, 3.0)),
                                (2, 6, 6, 0.7, (0.0, 3.0)), (2, 2, 6, 0.6, (0.0, 3.0))]:
        heatmaps[k, y, x] = value
        tags[k, y, x] = tag
    fast = parse_fast(heatmaps, tags, refine_search='full')
    assert len(fast[0]) == (1 if first_tag == 0.0 else 2)
    np.testing.assert_array_equal(fast[0][0, 2], [2.25, 6.25])
    for got, want in zip(fast, parse_reference(heatmaps, tags)):
        np.testing.assert_array_equal(got, want)


def test_fast_input_checks():
    heatmaps, tags = grid_maps(np.random.default_rng(0), 2)
    for got, want in zip(parse_fast(torch.from_numpy(heatmaps), torch.from_numpy(tags)),
                         parse_fast(heatmaps, tags)):
        np.testing.assert_array_equal(got, want)
    with pytest.raises(ValueError):
        parse_fast(heatmaps, tags, detection_threshold=-0.1)
    with pytest.raises(ValueError):
        parse_fast(heatmaps, tags, refine_search='exact')
    with pytest.raises(ValueError):
        parse_fast(heatmaps, tags[:, :-1])


def coco_maps(image: dict, annotations: list) -> Tuple[Maps, np.ndarray, np.ndarray]:
    """Perfect maps for one COCO image: a Gaussian (peak 1, sigma 2) at every labelled
    keypoint, centred on its pixel, and per person a constant tag (3 apart) painted over
    the pixels nearest to its keypoints."""
    persons = [a for a in annotations if a['num_keypoints'] > 0]
    keypoints = np.array([a['keypoints'] for a in persons], np.float64).reshape(-1, 17, 3)
    visible = keypoints[..., 2] > 0
    centres = keypoints[..., :2] + 0.5
    heatmaps = gaussian_maps(centres, visible.astype(float), image['height'], image['width'])
    labels = np.zeros((image['height'], image['width']), np.int64)
    for n, person in enumerate(keypoints):
        for x, y, v in person:
            if v > 0:
                labels[int(y), int(x)] = n + 1
    _, (iy, ix) = ndimage.distance_transform_edt(labels == 0, return_indices=True)
    person_tags = 3.0 * (labels[iy, ix] - 1)
    tags = np.broadcast_to(person_tags[None, :, :, None], heatmaps.shape + (2, ))
    return (heatmaps, tags.astype(np.float32)), centres, visible


@pytest.mark.parametrize('parse', [parse_reference, parse_fast])
def test_coco_persons_are_recovered(parse):
    coco = json.loads((DATA / 'coco' / 'test_coco.json').read_text())
    for image in coco['images']:
        annotations = [a for a in coco['annotations'] if a['image_id'] == image['id']]
        (heatmaps, tags), centres, visible = coco_maps(image, annotations)
        keypoints, scores, instance_scores = parse(heatmaps, tags)
        assert len(keypoints) == len(centres)
        for person_centres, person_visible in zip(centres, visible):
            errors = np.abs(keypoints - person_centres[None])[:, person_visible].max(axis=(1, 2))
            match = errors.argmin()
            assert errors[match] <= 0.25  # the +-0.25 rule: ties on a symmetric peak
            np.testing.assert_allclose(scores[match][person_visible], 1.0)
            np.testing.assert_allclose(instance_scores[match], person_visible.mean(), rtol=1e-6)


def test_coco_fast_equals_reference():
    coco = json.loads((DATA / 'coco' / 'test_coco.json').read_text())
    image = coco['images'][1]
    (heatmaps,
     tags), _, _ = coco_maps(image,
                             [a for a in coco['annotations'] if a['image_id'] == image['id']])
    assert_same_persons(parse_fast(heatmaps, tags, refine_search='full'),
                        parse_reference(heatmaps, tags))


def test_fast_detection_threshold_is_strict_in_float64():
    # The official parser compares float64 values: float32(0.1) = 0.10000000149 > 0.1 is a
    # candidate, the float32 just below it is not. numpy would compare a float32 array with
    # 0.1 in float32 and drop both.
    below = np.nextafter(np.float32(0.1), np.float32(0))
    heatmaps = np.zeros((2, 8, 8), np.float32)
    heatmaps[0, 1, 1], heatmaps[1, 5, 5] = 0.1, below
    tags = np.zeros((2, 8, 8, 1), np.float32)
    tags[1, 5, 5] = 3.0
    reference = parse_reference(heatmaps, tags)
    np.testing.assert_array_equal(reference[1], np.float32([[0.1, 0]]))
    for got, want in zip(parse_fast(heatmaps, tags, refine_search='full'), reference):
        np.testing.assert_array_equal(got, want)


def test_float32_threshold_compares_as_float64():
    rng = np.random.default_rng(0)
    values = np.concatenate([rng.random(1000, np.float32), np.float32([0, 0.1, 0.2, 0.5, 1])])
    values = np.concatenate([values, np.nextafter(values, 2), np.nextafter(values, -1)])
    for threshold in (0.0, 0.1, 0.2, 1 / 3, 0.5, 0.7, 1e-9, -0.1):
        np.testing.assert_array_equal(values > float32_threshold(threshold),
                                      values.astype(np.float64) > threshold)


def test_public_names_are_public():
    assert all(not name.startswith('_') for name in grouping_fast.__all__)
