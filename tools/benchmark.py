"""CPU benchmark of HigherHRNet's test step: time per stage, decoder comparison, throughput.

Usage::

    python tools/benchmark.py [--config CFG] [--checkpoint CKPT] [--images DIR [DIR ...]]
        [--persons 1 5 10 20 30] [--repeats 5] [--network-repeats 3] [--threads N]
        [--input-size I] [--out results.json] [--quick]
        [--sections images synthetic ap throughput]

Prints markdown tables and, with ``--out``, writes every number as JSON:

1. **Real images** (``--images``, default ``../shared/data/{coco,crowdpose,ochuman}``): ms
   per stage of the flip test of one image. Stages:

   - pre-process: ``LoadImage`` + ``HigherHRNetResize`` + ``PackPoseInputs`` (the config's
     test pipeline) + the model's data preprocessor;
   - network: backbone + head forward of the image and of its mirror;
   - aggregation: the head's resize/flip/level averaging onto the canvas;
   - NMS + top-k, grouping, adjust (quarter-pixel shift, person scores), refine (filling
     missing keypoints): the decoder's internal functions called one by one (their result
     equals the decoder's own, which the tests check); "decode" columns time the decoder's
     public call;
   - back-projection: mmpose's ``add_pred_to_datasample`` (canvas -> image pixels).

   Without ``--checkpoint`` the weights are random (the official initialisation), so the
   heatmaps hold no peak above the threshold and the decoder columns show its floor. The
   network time does not depend on the weights; the decoder time does, through the number
   of candidates, hence section 2.
2. **Synthetic maps**: aggregated maps on the canvas of a 640x480 COCO image with 1, 5, ...
   persons laid out on a grid, made from the persons of ``test_coco.json`` (a Gaussian per
   visible keypoint, one tag per person: :func:`render_maps`), in the variants of
   :data:`SYNTHETIC_VARIANTS`: clean; perturbed (peaks moved by up to 1 px, tag noise 0.1,
   10% of the joints missing); perturbed with heatmap noise; clean with a background tag.
   Decoded by our ``fast`` and ``reference`` parsers and by mmpose 1.x
   ``AssociativeEmbedding.batch_decode`` (same settings, tags in its (B, L*K, H, W) L-major
   layout). Post-processing = aggregation + decoding + back-projection, in % of the network
   time on the same canvas.
3. **Round-trip AP**: GT keypoints -> perfect (and perturbed) maps on each image's canvas ->
   decode -> back-projection -> mmpose ``CocoMetric`` (``nms_mode='none'``,
   ``score_mode='bbox'``), per decoder (:func:`round_trip_ap`).
4. **Throughput**: images/s of the config's val dataloader (no workers) + ``model.test_step``
   at batch 1 and 4 on one COCO image replicated 8 times (equal canvases) and, when the
   config has a ``val_dataloader.batch_sampler`` (batches of equal canvases; used in both
   sets), on the 4 COCO images twice each (3 canvas sizes).

Times are medians over ``--repeats`` runs after one untimed run; the network runs
``--network-repeats`` times without a warm-up run (the median drops the first, slower one).
``--quick`` is a small smoke run: input 256, one image, 1 and 5 persons, one repeat, 2
images and batch 2 for throughput. ``--sections`` runs a subset. On a shared machine,
``--threads 1`` avoids the large slow-down of busy-waiting torch threads competing for few
cores.
"""
import argparse
import copy
import json
import logging
import os
import statistics
import sys
import tempfile
import time
import warnings
from contextlib import contextmanager, redirect_stdout
from io import StringIO
from pathlib import Path
from typing import Callable, Dict, Iterator, List, NamedTuple, Optional, Sequence, Tuple

import numpy as np
import torch
from mmcv.transforms import Compose
from mmengine.config import Config
from mmengine.dataset import pseudo_collate
from mmengine.logging import MMLogger
from mmengine.registry import init_default_scope
from mmengine.runner import Runner, load_checkpoint
from mmengine.structures import InstanceData
from mmpose.apis.inference import dataset_meta_from_config
from mmpose.codecs import AssociativeEmbedding
from mmpose.codecs.utils import batch_heatmap_nms, refine_keypoints
from mmpose.datasets.datasets.utils import parse_pose_metainfo
from mmpose.evaluation.metrics import CocoMetric
from mmpose.registry import KEYPOINT_CODECS, MODELS
from mmpose.structures import PoseDataSample
from mmpose.utils.tensor_utils import to_numpy
from scipy.ndimage import distance_transform_edt
from torch import Tensor

import higherhrnet_plugin  # noqa: F401  (registers the model, codec and transforms)
from higherhrnet_plugin.codecs.utils.parser_common import (empty_result, official_candidates,
                                                           prepare_maps)
from higherhrnet_plugin.codecs.utils.parser_fast import (_Groups, fill_missing,
                                                         fill_missing_from_peaks, find_candidates,
                                                         quarter_pixel, refine_peaks)
from higherhrnet_plugin.codecs.utils.parser_reference import (adjust_people, match_by_tag,
                                                              refine_person)
from higherhrnet_plugin.datasets.transforms import HigherHRNetResize

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO_ROOT / '..' / 'shared' / 'data'
DEFAULT_CONFIG = REPO_ROOT / 'configs' / 'higherhrnet_w32_coco_512.py'
IMAGE_EXTENSIONS = ('.jpg', '.jpeg', '.png', '.bmp')
DECODERS = ('fast', 'reference', 'mmpose')
SECTIONS = ('images', 'synthetic', 'ap', 'throughput')
DECODE_STAGES = ('nms_topk', 'grouping', 'adjust', 'refine')
# Synthetic map variants: name -> (perturbed, tag_fill, heat_noise) of synthetic_maps. A trained
# network's heatmaps are not exactly 0 away from persons ('noisy heatmaps', std 0.02 guessed);
# 'background tags' has a tag far from every person's away from the keypoints.
SYNTHETIC_VARIANTS = {
    'clean': (False, 'nearest', 0.0),
    'perturbed': (True, 'nearest', 0.0),
    'noisy heatmaps': (True, 'nearest', 0.02),
    'background tags': (False, 'background', 0.0),
}
# Gaussian sigma of the synthetic maps in canvas pixels: the 1/2-resolution targets (sigma 2)
# resized x2 onto the canvas, as the aggregated maps of a trained model.
SYNTHETIC_SIGMA = 4.0
# The (H, W) of the image whose canvas the synthetic maps use: COCO's most common size.
SYNTHETIC_IMAGE_HW = (480, 640)


class Dataset(NamedTuple):
    """A folder of ``../shared/data`` and how mmpose evaluates it."""
    ann_file: str
    metainfo: str  # mmpose's dataset metainfo file
    iou_type: str
    use_area: bool


_METAINFO = 'configs/_base_/datasets/{}.py'
DATASETS = dict(
    coco=Dataset('test_coco.json', _METAINFO.format('coco'), 'keypoints', True),
    crowdpose=Dataset('test_crowdpose.json', _METAINFO.format('crowdpose'), 'keypoints_crowd',
                      False),
    ochuman=Dataset('test_ochuman.json', _METAINFO.format('ochuman'), 'keypoints', True),
)

ParseResult = Tuple[np.ndarray, np.ndarray, np.ndarray]
Size = Tuple[int, int]  # (W, H)

# ----------------------------------------------------------------------------------------
# Maps from annotations


class Persons(NamedTuple):
    """Keypoints of N persons with K keypoints.

    - keypoints (np.ndarray): (N, K, 2) float64 (x, y)
    - visible (np.ndarray): (N, K) bool
    - bboxes (np.ndarray): (N, 4) float64 (x, y, w, h)
    """
    keypoints: np.ndarray
    visible: np.ndarray
    bboxes: np.ndarray


def load_persons(annotations: Sequence[dict], num_keypoints: int) -> Persons:
    """The persons of COCO-style annotations that have at least one labelled keypoint."""
    anns = [a for a in annotations if a.get('num_keypoints', 0) > 0 and not a.get('iscrowd', 0)]
    raw = np.array([a['keypoints'] for a in anns], np.float64).reshape(-1, num_keypoints, 3)
    bboxes = np.array([a['bbox'] for a in anns], np.float64).reshape(-1, 4)
    return Persons(raw[..., :2], raw[..., 2] > 0, bboxes)


def crowd_layout(pool: Persons, num_persons: int, canvas: Tuple[int, int]) -> Persons:
    """``num_persons`` persons of ``pool`` (cycled) on a grid filling ``canvas`` (W, H).

    The grid has about square cells; each person's extent (its bbox and its visible
    keypoints, some of which lie outside COCO's bboxes) is scaled to 90% of its cell (aspect
    kept) and centred in it. The returned bboxes are these extents.
    """
    width, height = canvas
    cols = max(1, int(np.ceil(np.sqrt(num_persons * width / height))))
    rows = int(np.ceil(num_persons / cols))
    cell = np.array([width / cols, height / rows])
    index = np.arange(num_persons) % len(pool.keypoints)
    keypoints, bboxes = pool.keypoints[index].copy(), _extents(pool)[index]
    scale = 0.9 * np.min(cell / bboxes[:, 2:], axis=1)
    origin = bboxes[:, :2] + bboxes[:, 2:] / 2  # bbox centre
    slots = np.stack([np.arange(num_persons) % cols, np.arange(num_persons) // cols], axis=1)
    target = (slots + 0.5) * cell
    keypoints = (keypoints - origin[:, None]) * scale[:, None, None] + target[:, None]
    bboxes = np.concatenate(
        [target - bboxes[:, 2:] * scale[:, None] / 2, bboxes[:, 2:] * scale[:, None]], axis=1)
    return Persons(keypoints, pool.visible[index].copy(), bboxes)


def _extents(persons: Persons) -> np.ndarray:
    """(N, 4) (x, y, w, h) boxes around each person's bbox and visible keypoints."""
    corners = []
    for keypoints, visible, (x, y, w, h) in zip(*persons):
        points = np.concatenate([keypoints[visible], [[x, y], [x + w, y + h]]])
        corners.append(np.concatenate([points.min(axis=0), points.max(axis=0)]))
    corners = np.array(corners).reshape(-1, 4)
    return np.concatenate([corners[:, :2], corners[:, 2:] - corners[:, :2]], axis=1)


def render_maps(keypoints: np.ndarray,
                visible: np.ndarray,
                canvas: Tuple[int, int],
                sigma: float = 2.0,
                tag_spacing: float = 1.0,
                tag_dim: int = 2,
                tag_fill: str = 'nearest') -> Tuple[np.ndarray, np.ndarray]:
    """Perfect aggregated maps: a Gaussian per visible keypoint, one tag per person.

    The Gaussian of a keypoint at (x, y) is sampled at pixel centres (i + 0.5, j + 0.5), the
    frame in which the decoders report ``pixel + 0.5 +- 0.25``: the peak pixel contains
    (x, y) and its larger neighbour lies on the side of (x, y), so decoding recovers it
    within 0.25 px. Persons merge by maximum. Person n's tag is ``n * tag_spacing`` on all L
    channels. In keypoint k's tag map, the pixels within ``3*sigma + 1`` px of a keypoint k
    hold the tag of the person whose Gaussian is the largest there; the other pixels hold

    - ``tag_fill='nearest'``: the tag of the person with the nearest visible keypoint (of
      any type), smooth person-wise regions as trained networks predict;
    - ``tag_fill='background'``: -1, a background tag far from every person's.

    Args:
        keypoints (np.ndarray): (N, K, 2) (x, y) on the canvas.
        visible (np.ndarray): (N, K) bool; only visible keypoints inside the canvas are drawn.
        canvas (Tuple[int, int]): (W, H).
        sigma (float): Gaussian sigma in canvas pixels. Defaults to ``2.0``.
        tag_spacing (float): Tag difference of consecutive persons. Defaults to ``1.0``.
        tag_dim (int): L. Defaults to ``2`` (flip test).
        tag_fill (str): ``'nearest'`` or ``'background'``, see above. Defaults to
            ``'nearest'``.

    Returns:
        tuple:
        - heatmaps (np.ndarray): float32 (K, H, W)
        - tags (np.ndarray): float32 (K, H, W, L)
    """
    width, height = canvas
    num_keypoints = keypoints.shape[1]
    heatmaps = np.zeros((num_keypoints, height, width), np.float32)
    owners = np.full((num_keypoints, height, width), -1, np.int64)
    radius = int(np.ceil(3 * sigma)) + 1
    inside = visible & np.all((keypoints >= 0) & (keypoints < (width, height)), axis=-1)
    for person, k in zip(*np.nonzero(inside)):
        x, y = keypoints[person, k]
        x0, x1 = max(0, int(x) - radius), min(width, int(x) + radius + 1)
        y0, y1 = max(0, int(y) - radius), min(height, int(y) + radius + 1)
        gx = np.exp(-(np.arange(x0, x1) + 0.5 - x)**2 / (2 * sigma**2))
        gy = np.exp(-(np.arange(y0, y1) + 0.5 - y)**2 / (2 * sigma**2))
        patch = (gy[:, None] * gx[None]).astype(np.float32)
        window = heatmaps[k, y0:y1, x0:x1]
        larger = patch > window
        window[larger] = patch[larger]
        owners[k, y0:y1, x0:x1][larger] = person
    fill = _nearest_person(keypoints, inside, canvas) if tag_fill == 'nearest' else -1
    owners = np.where(owners >= 0, owners, fill)
    tag_values = np.where(owners >= 0, owners * tag_spacing, -1.0).astype(np.float32)
    return heatmaps, np.repeat(tag_values[..., None], tag_dim, axis=-1)


def _nearest_person(keypoints: np.ndarray, inside: np.ndarray, canvas: Size) -> np.ndarray:
    """(H, W) index of the person owning the nearest drawn keypoint; -1 if none is drawn."""
    width, height = canvas
    person_map = np.full((height, width), -1, np.int64)
    persons, ks = np.nonzero(inside)
    if len(persons) == 0:
        return person_map
    xs, ys = keypoints[persons, ks].astype(np.int64).T
    person_map[ys, xs] = persons
    _, (rows, cols) = distance_transform_edt(person_map < 0, return_indices=True)
    return person_map[rows, cols]


def perturb(keypoints: np.ndarray,
            visible: np.ndarray,
            rng: np.random.Generator,
            jitter: int = 1,
            missing: float = 0.1) -> Tuple[np.ndarray, np.ndarray]:
    """Move keypoints by integers in [-jitter, jitter] px and drop a ``missing`` fraction."""
    moved = keypoints + rng.integers(-jitter, jitter + 1, size=keypoints.shape)
    kept = visible & (rng.random(visible.shape) >= missing)
    return moved, kept


def add_noise(maps: np.ndarray, rng: np.random.Generator, std: float) -> np.ndarray:
    """Maps plus i.i.d. Gaussian noise of ``std`` (every pixel and channel), float32."""
    return (maps + rng.normal(0.0, std, size=maps.shape)).astype(np.float32)


def synthetic_maps(keypoints: np.ndarray,
                   visible: np.ndarray,
                   canvas: Tuple[int, int],
                   perturbed: bool,
                   rng: np.random.Generator,
                   sigma: float = 2.0,
                   tag_fill: str = 'nearest',
                   heat_noise: float = 0.0) -> Tuple[np.ndarray, np.ndarray]:
    """:func:`render_maps` of (perturbed) keypoints, (noisy) tags and heatmaps.

    ``perturbed``: :func:`perturb` the keypoints (jitter 1 px, 10% missing) and add noise of
    std 0.1 to the tags; ``heat_noise`` > 0: add noise of that std to the heatmaps.
    """
    if perturbed:
        keypoints, visible = perturb(keypoints, visible, rng)
    heatmaps, tags = render_maps(keypoints, visible, canvas, sigma, tag_fill=tag_fill)
    if perturbed:
        tags = add_noise(tags, rng, 0.1)
    if heat_noise > 0:
        heatmaps = add_noise(heatmaps, rng, heat_noise)
    return heatmaps, tags


def image_to_canvas(points: np.ndarray, size: Tuple[int, int], center: np.ndarray,
                    scale: np.ndarray) -> np.ndarray:
    """Inverse of :func:`canvas_to_image`: ``(p - c) * W' / s_x + (W', H') / 2``."""
    size = np.asarray(size, np.float64)
    return (points - center) * size / scale + size / 2


def canvas_to_image(points: np.ndarray, size: Tuple[int, int], center: np.ndarray,
                    scale: np.ndarray) -> np.ndarray:
    """mmpose's back-projection ``p / input_size * input_scale + input_center - scale / 2``."""
    size = np.asarray(size, np.float64)
    return points / size * scale + center - 0.5 * scale


# ----------------------------------------------------------------------------------------
# Decoders, whole and stage by stage


class StageTimer:
    """Accumulates wall-clock seconds per stage name: ``with timer('grouping'): ...``."""

    def __init__(self) -> None:
        self.seconds: Dict[str, float] = {}

    @contextmanager
    def __call__(self, name: str) -> Iterator[None]:
        start = time.perf_counter()
        yield
        self.seconds[name] = self.seconds.get(name, 0.0) + time.perf_counter() - start


class Decoder(NamedTuple):
    """A decoder of (K, H, W) heatmaps and (K, H, W, L) tags on the canvas.

    - decode: the public call as the model makes it, (heatmaps, tags) -> result
    - stages: the same computation through the decoder's internal functions, timed per stage
      by a :class:`StageTimer`: (heatmaps, tags, timer) -> result
    """
    decode: Callable[[Tensor, Tensor], ParseResult]
    stages: Callable[[Tensor, Tensor, StageTimer], ParseResult]


def build_decoders(codec_cfg: dict,
                   canvas: Tuple[int, int],
                   num_keypoints: int = 17) -> Dict[str, Decoder]:
    """Our ``fast`` and ``reference`` parsers and mmpose's ``AssociativeEmbedding``.

    All three use the settings of ``codec_cfg`` (a ``MultiLevelAssociativeEmbedding``
    config); mmpose's codec gets ``input_size = heatmap_size = canvas`` (no rescaling), the
    official grouping order of ``num_keypoints`` keypoints (it needs one per K) and
    ``decode_center_shift=0.5`` (the official +0.5), as mmpose's own AE config.
    """
    ours = {
        mode: KEYPOINT_CODECS.build(dict(codec_cfg, decode_mode=mode))
        for mode in ('fast', 'reference')
    }
    fast = ours['fast']
    mmpose_codec = AssociativeEmbedding(input_size=canvas,
                                        heatmap_size=canvas,
                                        decode_keypoint_order=list(
                                            fast._grouping_order(num_keypoints)),
                                        decode_nms_kernel=fast.decode_nms_kernel,
                                        decode_keypoint_thr=fast.decode_keypoint_thr,
                                        decode_tag_thr=fast.decode_tag_thr,
                                        decode_topk=fast.decode_topk,
                                        decode_center_shift=0.5,
                                        decode_max_instances=fast.decode_max_instances)

    def ours_decode(codec):
        return lambda heatmaps, tags: codec.batch_decode(heatmaps[None], tags[None])[0]

    def mmpose_decode(heatmaps, tags):
        return _first(mmpose_codec.batch_decode(heatmaps[None], mmpose_tags(tags)[None]))

    def mmpose_staged(heatmaps, tags, timer):
        return _mmpose_stages(mmpose_codec, heatmaps, mmpose_tags(tags), timer)

    return {
        'fast':
        Decoder(ours_decode(fast), lambda h, t, timer: _fast_stages(fast, h, t, timer)),
        'reference':
        Decoder(ours_decode(ours['reference']),
                lambda h, t, timer: _reference_stages(ours['reference'], h, t, timer)),
        'mmpose':
        Decoder(mmpose_decode, mmpose_staged),
    }


def mmpose_tags(tags: Tensor) -> Tensor:
    """(K, H, W, L) tags -> mmpose's (L*K, H, W), L-major (``[l0 k0..kK-1, l1 k0..]``)."""
    return tags.permute(3, 0, 1, 2).flatten(0, 1).contiguous()


def _first(batch: Tuple[List[np.ndarray], ...]) -> ParseResult:
    """The first image of mmpose's (keypoints list, scores list, instance scores list)."""
    keypoints, keypoint_scores, instance_scores = batch
    return keypoints[0], keypoint_scores[0], instance_scores[0]


def _fast_stages(codec, heatmaps: Tensor, tags: Tensor, timer: StageTimer) -> ParseResult:
    """``parse_fast``, one timed stage at a time (same calls, same order)."""
    with timer('nms_topk'):
        heatmaps, tags = prepare_maps(heatmaps, tags)
        num_keypoints = heatmaps.shape[0]
        candidates = find_candidates(heatmaps, tags, codec.decode_nms_kernel, codec.decode_topk,
                                     codec.decode_keypoint_thr)
    with timer('grouping'):
        groups = _Groups(num_keypoints, tags.shape[-1], sum(len(c.flat) for c in candidates))
        for k in codec._grouping_order(num_keypoints):
            groups.add_keypoint(k, candidates[k], codec.decode_tag_thr, codec.decode_max_instances)
    if groups.size == 0:
        return empty_result(num_keypoints)
    with timer('adjust'):
        flat, values, person_tags = groups.result()
        width = heatmaps.shape[2]
        keypoints = np.stack([flat % width, flat // width], axis=-1).astype(np.float32)
        found = values > 0
        keypoints[found] = quarter_pixel(heatmaps, np.nonzero(found)[1], flat[found])
        instance_scores = values.mean(axis=1)
    with timer('refine'):
        if codec.decode_refine_search == 'full':
            fill_missing(keypoints, values, flat, person_tags, heatmaps, tags)
        else:
            peaks = refine_peaks(heatmaps, tags, candidates, (values == 0).any(axis=0),
                                 codec.decode_nms_kernel, codec.decode_topk,
                                 codec.decode_keypoint_thr)
            fill_missing_from_peaks(keypoints, values, person_tags, heatmaps, peaks)
    return keypoints, values, instance_scores


def _reference_stages(codec, heatmaps: Tensor, tags: Tensor, timer: StageTimer) -> ParseResult:
    """``parse_reference``, one timed stage at a time (same calls, same order)."""
    with timer('nms_topk'):
        heatmaps, tags = prepare_maps(heatmaps, tags)
        num_keypoints = heatmaps.shape[0]
        candidates = official_candidates(heatmaps, tags, codec.decode_nms_kernel,
                                         codec.decode_topk)
    with timer('grouping'):
        people = match_by_tag(*candidates, codec._grouping_order(num_keypoints),
                              codec.decode_keypoint_thr, codec.decode_tag_thr,
                              codec.decode_max_instances)
    if len(people) == 0:
        return empty_result(num_keypoints)
    with timer('adjust'):
        adjust_people(people, heatmaps)
        instance_scores = np.array([person[:, 2].mean() for person in people], np.float32)
    with timer('refine'):
        for person in people:
            refine_person(person, heatmaps, tags)
    return people[:, :, :2].copy(), people[:, :, 2].copy(), instance_scores


def _mmpose_stages(codec: AssociativeEmbedding, heatmaps: Tensor, tags: Tensor,
                   timer: StageTimer) -> ParseResult:
    """mmpose 1.3.2 ``AssociativeEmbedding.batch_decode`` for one image, stage by stage."""
    with timer('nms_topk'):
        peaks = batch_heatmap_nms(heatmaps[None], codec.decode_nms_kernel)
        top = to_numpy(codec._get_batch_topk(peaks, tags[None], k=codec.decode_topk))
    with timer('grouping'):
        groups = codec._group_keypoints(*top)[0]
    with timer('adjust'):
        heatmaps_np, tags_np = to_numpy(heatmaps), to_numpy(tags)
        keypoints, scores = groups[..., :-1], groups[..., -1]
        instance_scores = scores.mean(axis=-1)
        if keypoints.size > 0:
            keypoints = refine_keypoints(keypoints, heatmaps_np)
            keypoints += codec.decode_center_shift * (scores > 0).astype(keypoints.dtype)[...,
                                                                                          None]
    with timer('refine'):
        if keypoints.size > 0:
            keypoints, scores = codec._fill_missing_keypoints(keypoints, scores, heatmaps_np,
                                                              tags_np)
    return keypoints * codec.scale_factor, scores, instance_scores


# ----------------------------------------------------------------------------------------
# Timing helpers


def median_seconds(fn: Callable[[], object],
                   repeats: int,
                   warmup: int = 1) -> Tuple[float, object]:
    """Median wall-clock seconds of ``repeats`` calls after ``warmup`` untimed ones, and the
    last call's result."""
    for _ in range(warmup):
        fn()
    times, result = [], None
    for _ in range(max(1, repeats)):
        start = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times), result


def time_decoder(decoder: Decoder, heatmaps: Tensor, tags: Tensor,
                 repeats: int) -> Tuple[dict, ParseResult]:
    """ms of the whole decoder call and of each stage (medians), the person count; the result."""
    total, result = median_seconds(lambda: decoder.decode(heatmaps, tags), repeats)
    stage_runs = []
    for _ in range(max(1, repeats)):
        timer = StageTimer()
        decoder.stages(heatmaps, tags, timer)
        stage_runs.append(timer.seconds)
    stages = {
        name: 1e3 * statistics.median(run.get(name, 0.0) for run in stage_runs)
        for name in DECODE_STAGES
    }
    return dict(total_ms=1e3 * total, stages_ms=stages, persons=int(len(result[0]))), result


def time_back_projection(model, keypoints: np.ndarray, meta: dict, repeats: int) -> float:
    """ms of mmpose's ``add_pred_to_datasample`` for ``keypoints`` (N, K, 2)."""
    sample = PoseDataSample(metainfo=meta)

    def project():
        pred = InstanceData(keypoints=keypoints.copy(),
                            keypoint_scores=np.ones(keypoints.shape[:2], np.float32),
                            bbox_scores=np.ones(len(keypoints), np.float32))
        return model.add_pred_to_datasample([pred], None, [sample])

    return 1e3 * median_seconds(project, repeats)[0]


# ----------------------------------------------------------------------------------------
# The model and its stages


@contextmanager
def quiet() -> Iterator[None]:
    """Silence the chatter of the libraries inside the block.

    mmengine's logger goes to WARNING (``init_weights`` logs every parameter, the metric its
    progress), stdout is dropped (xtcocotools prints while loading annotations) and
    UserWarnings are ignored (mmpose warns that it finds its dataset metainfo files in its
    own package, which is where they are).
    """
    logger = MMLogger.get_current_instance()
    level = logger.level
    logger.setLevel(logging.WARNING)
    try:
        with warnings.catch_warnings(), redirect_stdout(StringIO()):
            warnings.simplefilter('ignore', UserWarning)
            yield
    finally:
        logger.setLevel(level)


def build_model(cfg: Config, checkpoint: Optional[str]) -> torch.nn.Module:
    """The config's model on CPU in eval mode: official random init, or ``checkpoint``."""
    cfg = copy.deepcopy(cfg)
    cfg.model.backbone.init_cfg = None  # no download of the ImageNet weights
    model = MODELS.build(cfg.model)
    with quiet():
        model.init_weights()
        model.dataset_meta = dataset_meta_from_config(cfg, 'test')
    if checkpoint:
        load_checkpoint(model, checkpoint, map_location='cpu')
    return model.eval()


def set_input_size(cfg: Config, size: int) -> None:
    """Change ``HigherHRNetResize.input_size`` of the test pipelines in place."""
    for loader in ('val_dataloader', 'test_dataloader'):
        for step in cfg[loader]['dataset']['pipeline']:
            if step['type'] == 'HigherHRNetResize':
                step['input_size'] = size
    for step in cfg.get('val_pipeline', []):
        if step['type'] == 'HigherHRNetResize':
            step['input_size'] = size


def config_resize(cfg: Config) -> HigherHRNetResize:
    """The ``HigherHRNetResize`` of the config's test pipeline."""
    step = next(s for s in cfg.test_dataloader.dataset.pipeline
                if s['type'] == 'HigherHRNetResize')
    return HigherHRNetResize(**{k: v for k, v in step.items() if k != 'type'})


def preprocess(model, pipeline: Compose, data_info: dict) -> dict:
    """Test pipeline + data preprocessor: ``dict(inputs=(1, 3, H', W'), data_samples=[...])``."""
    return model.data_preprocessor(pseudo_collate([pipeline(copy.copy(data_info))]), False)


def network(model, inputs: Tensor) -> list:
    """Backbone + head forward of the inputs and of their mirror: [orig levels, flip levels]."""
    return [model.head.forward(model.extract_feat(x)) for x in (inputs, inputs.flip(-1))]


def aggregate(model, views: list, canvas: Tuple[int, int],
              flip_indices: Sequence[int]) -> Tuple[Tensor, Tensor]:
    """The head's test-time aggregation of one sample: (K, H, W) heatmaps, (K, H, W, L) tags."""
    aggregation = model.test_cfg.get('aggregation', 'official')
    return model.head._aggregate_scales([views], [1.0], canvas, flip_indices, aggregation)


def time_image(model, pipeline: Compose, path: Path, decoders: Dict[str, Decoder], repeats: int,
               network_repeats: int) -> dict:
    """Every stage of the flip test of one image (ms), decoded by every decoder."""
    data_info = dict(img_path=str(path), **model.dataset_meta)
    pre, data = median_seconds(lambda: preprocess(model, pipeline, data_info), repeats)
    meta = data['data_samples'][0].metainfo
    canvas = tuple(int(v) for v in meta['input_size'])
    with torch.no_grad():
        net, views = median_seconds(lambda: network(model, data['inputs']), network_repeats, 0)
        agg, maps = median_seconds(lambda: aggregate(model, views, canvas, meta['flip_indices']),
                                   repeats)
    heatmaps, tags = maps
    decoded = {name: time_decoder(d, heatmaps, tags, repeats) for name, d in decoders.items()}
    back = time_back_projection(model, decoded['fast'][1][0], meta, repeats)
    decoded = {name: row for name, (row, _) in decoded.items()}
    return dict(image=f'{path.parent.name}/{path.name}',
                canvas=list(canvas),
                preprocess_ms=1e3 * pre,
                network_ms=1e3 * net,
                aggregation_ms=1e3 * agg,
                decoders=decoded,
                back_projection_ms=back)


def time_canvas(model, canvas: Tuple[int, int], network_repeats: int, repeats: int) -> dict:
    """Network and aggregation ms on an all-zero input of ``canvas`` (W, H)."""
    width, height = canvas
    inputs = torch.zeros(1, 3, height, width)
    flip_indices = model.dataset_meta['flip_indices']
    with torch.no_grad():
        net, views = median_seconds(lambda: network(model, inputs), network_repeats, 0)
        agg, _ = median_seconds(lambda: aggregate(model, views, canvas, flip_indices), repeats)
    return dict(canvas=list(canvas), network_ms=1e3 * net, aggregation_ms=1e3 * agg)


def time_synthetic(model,
                   pool: Persons,
                   canvas_times: dict,
                   decoders: Dict[str, Decoder],
                   persons: Sequence[int],
                   repeats: int,
                   seed: int = 0) -> List[dict]:
    """Decoder rows on the crowd maps of each person count, in each of SYNTHETIC_VARIANTS."""
    canvas = tuple(canvas_times['canvas'])
    meta = dict(input_size=canvas,
                input_center=np.array(canvas) / 2,
                input_scale=np.array(canvas, np.float64))
    rows = []
    for num_persons in persons:
        layout = crowd_layout(pool, num_persons, canvas)
        for maps, (perturbed, tag_fill, heat_noise) in SYNTHETIC_VARIANTS.items():
            rng = np.random.default_rng([seed, num_persons])
            heatmaps, tags = (
                torch.from_numpy(m)
                for m in synthetic_maps(layout.keypoints, layout.visible, canvas, perturbed, rng,
                                        SYNTHETIC_SIGMA, tag_fill, heat_noise))
            for name, decoder in decoders.items():
                row, (keypoints, _, _) = time_decoder(decoder, heatmaps, tags, repeats)
                row['back_projection_ms'] = time_back_projection(model, keypoints, meta, repeats)
                row.update(num_persons=num_persons,
                           maps=maps,
                           decoder=name,
                           post_percent=_post_percent(canvas_times, row))
                rows.append(row)
    return rows


def _post_percent(canvas_times: dict, row: dict) -> float:
    """(aggregation + decoding + back-projection) in % of the network time."""
    post = canvas_times['aggregation_ms'] + row['total_ms'] + row['back_projection_ms']
    return 100.0 * post / canvas_times['network_ms']


# ----------------------------------------------------------------------------------------
# Round-trip AP


def round_trip_predictions(data_dir: Path,
                           dataset: Dataset,
                           resize: HigherHRNetResize,
                           decoders: Dict[str, Decoder],
                           perturbed: bool,
                           seed: int = 0) -> Dict[str, List[dict]]:
    """Decoded and back-projected predictions of every image of ``data_dir``, per decoder.

    Each image's GT keypoints go to its ``HigherHRNetResize`` canvas (the inverse of the
    back-projection), become maps (:func:`synthetic_maps`, sigma 2, perturbed with an
    image-seeded generator if asked), are decoded, and come back to image pixels.

    Returns:
        Dict[str, List[dict]]: Per decoder, one dict per image: ``img_id``, ``keypoints``
        (N, K, 2), ``keypoint_scores`` (N, K), ``bbox_scores`` (N,).
    """
    content = json.loads((data_dir / dataset.ann_file).read_text())
    num_keypoints = len(content['categories'][0]['keypoints'])
    predictions: Dict[str, List[dict]] = {name: [] for name in decoders}
    for image in content['images']:
        size, center, scale = resize.get_size_center_scale((image['height'], image['width']), 1.0,
                                                           1.0)
        anns = [a for a in content['annotations'] if a['image_id'] == image['id']]
        persons = load_persons(anns, num_keypoints)
        keypoints = image_to_canvas(persons.keypoints, size, center, scale)
        rng = np.random.default_rng([seed, image['id']])
        heatmaps, tags = (
            torch.from_numpy(m)
            for m in synthetic_maps(keypoints, persons.visible, size, perturbed, rng))
        for name, decoder in decoders.items():
            found, keypoint_scores, scores = decoder.decode(heatmaps, tags)
            predictions[name].append(
                dict(img_id=image['id'],
                     keypoints=canvas_to_image(np.asarray(found, np.float64), size, center, scale),
                     keypoint_scores=np.asarray(keypoint_scores),
                     bbox_scores=np.asarray(scores)))
    return predictions


def dataset_num_keypoints(data_dir: Path, name: str) -> int:
    """K of a dataset of ``DATASETS``, from its annotation file's category."""
    content = json.loads((data_dir / DATASETS[name].ann_file).read_text())
    return len(content['categories'][0]['keypoints'])


def coco_ap(data_dir: Path, dataset: Dataset, predictions: List[dict]) -> float:
    """AP of ``predictions`` with mmpose's ``CocoMetric`` as the HigherHRNet configs use it."""
    with quiet():
        metric = CocoMetric(ann_file=str(data_dir / dataset.ann_file),
                            nms_mode='none',
                            score_mode='bbox',
                            iou_type=dataset.iou_type,
                            use_area=dataset.use_area)
        metric.dataset_meta = parse_pose_metainfo(dict(from_file=dataset.metainfo))
    for pred in predictions:
        # A list ``id`` marks a bottom-up sample: the metric then keeps every instance of the
        # image (with a scalar ``id`` it deduplicates them by id and keeps one).
        sample = dict(
            id=[pred['img_id']],
            img_id=pred['img_id'],
            gt_instances={},
            pred_instances={k: pred[k]
                            for k in ('keypoints', 'keypoint_scores', 'bbox_scores')})
        metric.process([], [sample])
    with tempfile.TemporaryDirectory() as tmp, quiet():
        metric.outfile_prefix = os.path.join(tmp, 'results')
        return float(metric.compute_metrics(metric.results)['AP'])


def round_trip_ap(data_root: Path, names: Sequence[str], resize: HigherHRNetResize,
                  codec_cfg: dict) -> List[dict]:
    """AP of every decoder on perfect and perturbed maps of each dataset in ``names``."""
    rows = []
    for name in names:
        data_dir = data_root / name
        decoders = build_decoders(codec_cfg, (64, 64), dataset_num_keypoints(data_dir, name))
        for perturbed in (False, True):
            preds = round_trip_predictions(data_dir, DATASETS[name], resize, decoders, perturbed)
            aps = {decoder: coco_ap(data_dir, DATASETS[name], p) for decoder, p in preds.items()}
            rows.append(dict(dataset=name, maps='perturbed' if perturbed else 'perfect', ap=aps))
    return rows


# ----------------------------------------------------------------------------------------
# Throughput


def replicated_coco(dst: Path, file_names: Sequence[str], copies: int) -> Path:
    """COCO layout under ``dst``: each of ``file_names`` (of ../shared/data/coco) ``copies``
    times as its own image id (same file, same annotations) in person_keypoints_val2017.json."""
    src = SHARED_DATA / 'coco'
    content = json.loads((src / 'test_coco.json').read_text())
    images, annotations = [], []
    for copy_index in range(copies):
        for image in content['images']:
            if image['file_name'] not in file_names:
                continue
            new_id = len(images) + 1
            images.append({**image, 'id': new_id})
            annotations += [{
                **a, 'image_id': new_id,
                'id': 1000 * new_id + i
            } for i, a in enumerate(content['annotations']) if a['image_id'] == image['id']]
    (dst / 'annotations').mkdir(parents=True, exist_ok=True)
    (dst / 'val2017').mkdir(exist_ok=True)
    (dst / 'annotations' / 'person_keypoints_val2017.json').write_text(
        json.dumps({
            **content, 'images': images,
            'annotations': annotations
        }))
    for name in file_names:
        (dst / 'val2017' / name).symlink_to((src / name).resolve())
    return dst


def images_per_second(cfg: Config, model, data_root: Path, batch_size: int,
                      use_batch_sampler: bool) -> dict:
    """Run the val dataloader (no workers) + ``model.test_step`` over ``data_root``, timed,
    after one untimed warm-up batch."""
    loader_cfg = copy.deepcopy(cfg.val_dataloader)
    loader_cfg.update(batch_size=batch_size, num_workers=0, persistent_workers=False)
    loader_cfg.dataset.data_root = str(data_root)
    if not use_batch_sampler:
        loader_cfg.pop('batch_sampler', None)
    with quiet():
        loader = Runner.build_dataloader(loader_cfg)
    images, batches, step_seconds, shapes = 0, 0, 0.0, set()
    with torch.no_grad():
        model.test_step(next(iter(loader)))  # warm-up: first allocations at this batch shape
    start = time.perf_counter()
    with torch.no_grad():
        for data in loader:
            step_start = time.perf_counter()
            model.test_step(data)
            step_seconds += time.perf_counter() - step_start
            images += len(data['data_samples'])
            batches += 1
            shapes.update(tuple(d.metainfo['input_size']) for d in data['data_samples'])
    seconds = time.perf_counter() - start
    return dict(batch_size=batch_size,
                images=images,
                batches=batches,
                seconds=seconds,
                images_per_second=images / seconds,
                test_step_seconds=step_seconds,
                canvases=sorted(list(s) for s in shapes))


def time_throughput(cfg: Config, model, batch_sizes: Sequence[int], copies: int,
                    quick: bool) -> List[dict]:
    """Images/s at each batch size on replicated COCO images (see the module docstring).

    The config's ``val_dataloader.batch_sampler`` (canvas grouping) is used when it has one.
    """
    coco = sorted(p.name for p in (SHARED_DATA / 'coco').glob('*.jpg'))
    with_sampler = 'batch_sampler' in cfg.val_dataloader
    sets = [(f'1 image x {copies}', coco[:1], copies)]
    if with_sampler and not quick:
        sets.append((f'{len(coco)} images x {copies // len(coco)}', coco, copies // len(coco)))
    rows = []
    for label, names, n in sets:
        with tempfile.TemporaryDirectory() as tmp:
            root = replicated_coco(Path(tmp), names, n)
            for batch_size in batch_sizes:
                row = images_per_second(cfg, model, root, batch_size, with_sampler)
                rows.append(dict(set=label, batch_sampler=with_sampler, **row))
    return rows


# ----------------------------------------------------------------------------------------
# Report


def markdown_table(headers: Sequence[str], rows: Sequence[Sequence]) -> str:
    """A markdown table; floats with 1 decimal (2 below 10)."""

    def cell(value):
        if isinstance(value, float):
            return f'{value:.2f}' if abs(value) < 10 else f'{value:.1f}'
        return str(value)

    lines = ['| ' + ' | '.join(headers) + ' |', '|' + '---|' * len(headers)]
    lines += ['| ' + ' | '.join(cell(v) for v in row) + ' |' for row in rows]
    return '\n'.join(lines)


def image_table(rows: List[dict]) -> str:
    headers = [
        'image', 'canvas', 'pre-process', 'network (orig+flip)', 'aggregation', 'NMS+top-k',
        'grouping', 'adjust', 'refine', 'back-proj', 'persons', 'decode fast', 'decode reference',
        'decode mmpose', 'post % of network'
    ]
    body = []
    for r in rows:
        fast = r['decoders']['fast']
        post = r['aggregation_ms'] + fast['total_ms'] + r['back_projection_ms']
        body.append([
            r['image'], 'x'.join(map(str, r['canvas'])), r['preprocess_ms'], r['network_ms'],
            r['aggregation_ms'], *(fast['stages_ms'][s] for s in DECODE_STAGES),
            r['back_projection_ms'], fast['persons'],
            *(r['decoders'][d]['total_ms'] for d in DECODERS), 100.0 * post / r['network_ms']
        ])
    return markdown_table(headers, body)


def synthetic_table(rows: List[dict]) -> str:
    headers = [
        'persons', 'maps', 'decoder', 'found', 'NMS+top-k', 'grouping', 'adjust', 'refine',
        'decode total', 'back-proj', 'post % of network'
    ]
    body = [[
        r['num_persons'], r['maps'], r['decoder'], r['persons'], *(r['stages_ms'][s]
                                                                   for s in DECODE_STAGES),
        r['total_ms'], r['back_projection_ms'], r['post_percent']
    ] for r in rows]
    return markdown_table(headers, body)


def ratio_rows(rows: List[dict]) -> List[dict]:
    """Per (persons, maps): decode ms of each decoder and the speed-ups of ``fast``."""
    by_case: Dict[Tuple[int, str], Dict[str, float]] = {}
    for r in rows:
        by_case.setdefault((r['num_persons'], r['maps']), {})[r['decoder']] = r['total_ms']
    return [
        dict(num_persons=n,
             maps=maps,
             **{f'{d}_ms': ms[d]
                for d in DECODERS},
             reference_over_fast=ms['reference'] / ms['fast'],
             mmpose_over_fast=ms['mmpose'] / ms['fast']) for (n, maps), ms in by_case.items()
    ]


def ratio_table(rows: List[dict]) -> str:
    headers = [
        'persons', 'maps', 'fast ms', 'reference ms', 'mmpose ms', 'reference / fast',
        'mmpose / fast'
    ]
    return markdown_table(headers, [[
        r['num_persons'], r['maps'], r['fast_ms'], r['reference_ms'], r['mmpose_ms'],
        r['reference_over_fast'], r['mmpose_over_fast']
    ] for r in rows])


def ap_table(rows: List[dict]) -> str:
    headers = ['dataset', 'maps', 'AP fast', 'AP reference', 'AP mmpose', '|fast - reference|']
    return markdown_table(headers, [[
        r['dataset'], r['maps'], *(f"{r['ap'][d]:.4f}" for d in DECODERS),
        f"{abs(r['ap']['fast'] - r['ap']['reference']):.4f}"
    ] for r in rows])


def throughput_table(rows: List[dict]) -> str:
    base = {r['set']: r['images_per_second'] for r in rows if r['batch_size'] == 1}
    headers = [
        'set', 'canvases', 'batch', 'images', 'batches', 'seconds', 'images/s', 'test_step s',
        'vs batch 1'
    ]
    return markdown_table(headers, [[
        r['set'], ', '.join(
            'x'.join(map(str, c))
            for c in r['canvases']), r['batch_size'], r['images'], r['batches'], r['seconds'],
        r['images_per_second'], r['test_step_seconds'], r['images_per_second'] / base[r['set']]
    ] for r in rows])


def targets(results: dict) -> Dict[str, dict]:
    """The speed issue's goals that ``results`` covers: ``met`` and the worst case's value."""
    goals = {}
    if 'synthetic' in results:
        post = max(r['post_percent'] for r in results['synthetic'] if r['decoder'] == 'fast')
        speedup = min(r['mmpose_over_fast'] for r in results['ratios'])
        goals['post-processing <= 10% of network (fast, synthetic, %)'] = dict(met=post <= 10,
                                                                               worst=post)
        goals['fast >= 10x mmpose batch_decode (x)'] = dict(met=speedup >= 10, worst=speedup)
    if 'round_trip_ap' in results:
        gap = max(abs(r['ap']['fast'] - r['ap']['reference']) for r in results['round_trip_ap'])
        goals['|AP fast - AP reference| <= 0.1'] = dict(met=gap <= 0.1, worst=gap)
    if 'throughput' in results:
        rows = results['throughput']
        batch_1 = {r['set']: r['images_per_second'] for r in rows if r['batch_size'] == 1}
        gain = min(r['images_per_second'] / batch_1[r['set']] for r in rows if r['batch_size'] > 1)
        goals['batched images/s >= 1.5x batch 1 (x)'] = dict(met=gain >= 1.5, worst=gain)
    return goals


def report(results: dict) -> str:
    """The markdown report of the sections in ``results``."""
    env = results['environment']
    parts = [
        f"# HigherHRNet benchmark ({env['config']}, input {env['input_size']}, "
        f"{env['weights']}, CPU, {env['threads']} torch threads, load average "
        f"{env['load_before']} before, {env['load_after']} after)"
    ]
    if 'images' in results:
        parts += ['## Real images (ms)', image_table(results['images'])]
    if 'synthetic' in results:
        canvas = results['canvas']
        parts += [
            f"## Synthetic maps on canvas {'x'.join(map(str, canvas['canvas']))} (ms); network "
            f"{canvas['network_ms']:.0f} ms, aggregation {canvas['aggregation_ms']:.1f} ms",
            synthetic_table(results['synthetic']), '## Decoder ratios',
            ratio_table(results['ratios'])
        ]
    if 'round_trip_ap' in results:
        parts += ['## Round-trip AP', ap_table(results['round_trip_ap'])]
    if 'throughput' in results:
        parts += [
            '## Throughput (val dataloader + test_step)',
            throughput_table(results['throughput'])
        ]
    parts += [
        '## Targets',
        '\n'.join(f"- {name}: {'met' if t['met'] else 'NOT met'} (worst case {t['worst']:.3g})"
                  for name, t in results['targets'].items())
    ]
    return '\n\n'.join(parts)


# ----------------------------------------------------------------------------------------
# Command line


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--config', default=str(DEFAULT_CONFIG))
    parser.add_argument('--checkpoint', help='weights; default: random (official init)')
    parser.add_argument('--images',
                        nargs='+',
                        type=Path,
                        help='image folders (default ../shared/data/{coco,crowdpose,ochuman})')
    parser.add_argument('--persons', nargs='+', type=int, help='default 1 5 10 20 30')
    parser.add_argument('--repeats', type=int, help='runs per stage (median); default 5')
    parser.add_argument('--network-repeats', type=int, help='network runs (median); default 3')
    parser.add_argument('--threads', type=int, help='torch threads; default torch\'s')
    parser.add_argument('--input-size', type=int, help='HigherHRNetResize input size')
    parser.add_argument('--out', type=Path, help='write the results as JSON')
    parser.add_argument('--quick', action='store_true', help='small smoke run (see above)')
    parser.add_argument('--sections',
                        nargs='+',
                        choices=SECTIONS,
                        default=list(SECTIONS),
                        help='sections to run (default: all)')
    args = parser.parse_args(argv)
    quick = dict(persons=[1, 5], repeats=1, network_repeats=1, input_size=256)
    full = dict(persons=[1, 5, 10, 20, 30], repeats=5, network_repeats=3)
    for key, value in (quick if args.quick else full).items():
        if getattr(args, key) is None:
            setattr(args, key, value)
    if args.images is None:
        args.images = [SHARED_DATA / name for name in DATASETS]
    return args


def image_paths(folders: Sequence[Path], quick: bool) -> List[Path]:
    paths = [
        p for folder in folders for p in sorted(folder.iterdir())
        if p.suffix.lower() in IMAGE_EXTENSIONS
    ]
    if not paths:
        raise SystemExit(f'no images in {[str(f) for f in folders]}')
    return paths[:1] if quick else paths


def run(args: argparse.Namespace) -> dict:
    """Every section; returns the results dict (also the JSON written by ``--out``)."""
    init_default_scope('mmpose')
    if args.threads:
        torch.set_num_threads(args.threads)
    cfg = Config.fromfile(args.config)
    if args.input_size:
        set_input_size(cfg, args.input_size)
    model = build_model(cfg, args.checkpoint)
    resize = config_resize(cfg)
    pipeline = Compose(cfg.test_dataloader.dataset.pipeline)
    codec_cfg = cfg.model.head.decoder
    canvas = resize.get_size_center_scale(SYNTHETIC_IMAGE_HW, 1.0, 1.0)[0]
    decoders = build_decoders(codec_cfg, canvas)
    load_before = os.getloadavg()[0]
    pool = load_persons(
        json.loads((SHARED_DATA / 'coco' / 'test_coco.json').read_text())['annotations'], 17)

    with torch.no_grad():
        network(model, torch.zeros(1, 3, 64, 64))  # warm-up
    results = dict(
        environment=dict(config=Path(args.config).name,
                         input_size=resize.input_size,
                         weights=args.checkpoint or 'random init (official), no checkpoint',
                         threads=torch.get_num_threads(),
                         cpu_count=os.cpu_count(),
                         torch=torch.__version__,
                         repeats=args.repeats,
                         network_repeats=args.network_repeats,
                         load_before=round(load_before, 2)))
    sections = set(args.sections)
    if 'images' in sections:
        results['images'] = [
            time_image(model, pipeline, p, decoders, args.repeats, args.network_repeats)
            for p in image_paths(args.images, args.quick)
        ]
    if 'synthetic' in sections:
        results['canvas'] = time_canvas(model, canvas, args.network_repeats, args.repeats)
        results['synthetic'] = time_synthetic(model, pool, results['canvas'], decoders,
                                              args.persons, args.repeats)
        results['ratios'] = ratio_rows(results['synthetic'])
    if 'ap' in sections:
        results['round_trip_ap'] = round_trip_ap(SHARED_DATA, ['coco'] if args.quick else DATASETS,
                                                 resize, codec_cfg)
    if 'throughput' in sections:
        results['throughput'] = time_throughput(cfg, model, (1, 2) if args.quick else (1, 4),
                                                2 if args.quick else 8, args.quick)
    results['targets'] = targets(results)
    results['environment']['load_after'] = round(os.getloadavg()[0], 2)
    return results


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = parse_args(argv)
    results = run(args)
    print(report(results))
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(results, indent=1))
    return 0


if __name__ == '__main__':
    sys.exit(main())
