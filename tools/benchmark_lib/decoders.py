"""The decoders compared by the benchmark, as a public call and stage by stage."""
import statistics
from typing import Callable, Dict, List, NamedTuple, Tuple

import numpy as np
from mmpose.codecs import AssociativeEmbedding
from mmpose.codecs.utils import batch_heatmap_nms, refine_keypoints
from mmpose.registry import KEYPOINT_CODECS
from mmpose.utils.tensor_utils import to_numpy
from torch import Tensor

from higherhrnet_plugin.codecs.utils.grouping_candidates import candidates_above
from higherhrnet_plugin.codecs.utils.grouping_common import (empty_result, official_candidates,
                                                             prepare_maps)
from higherhrnet_plugin.codecs.utils.grouping_fast import group_candidates, keypoint_positions
from higherhrnet_plugin.codecs.utils.grouping_peaks import scan_peaks
from higherhrnet_plugin.codecs.utils.grouping_reference import (adjust_people, match_by_tag,
                                                                refine_person)
from higherhrnet_plugin.codecs.utils.grouping_refine import (MapPeaks, fill_missing,
                                                             fill_missing_from_peaks)

from .timing import StageTimer, median_seconds

DECODE_STAGES = ('nms_topk', 'grouping', 'adjust', 'refine')
ParseResult = Tuple[np.ndarray, np.ndarray, np.ndarray]


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
                                            fast.grouping_order(num_keypoints)),
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
        table = scan_peaks(heatmaps, codec.decode_nms_kernel, codec.decode_topk)
        candidates = candidates_above(table, tags, codec.decode_keypoint_thr)
    with timer('grouping'):
        flat, values, person_tags = group_candidates(candidates,
                                                     codec.grouping_order(num_keypoints),
                                                     codec.decode_tag_thr,
                                                     codec.decode_max_instances)
    if len(flat) == 0:
        return empty_result(num_keypoints)
    with timer('adjust'):
        source = MapPeaks(heatmaps, tags, table)
        keypoints = keypoint_positions(source, flat, values, codec.decode_adjust)
        instance_scores = values.mean(axis=1)
    with timer('refine'):
        if codec.decode_refine_search == 'full':
            fill_missing(keypoints, values, flat, person_tags, heatmaps, tags)
        else:
            peaks = source.peaks((values == 0).any(axis=0))
            fill_missing_from_peaks(keypoints, values, person_tags, source, peaks)
    return keypoints, values, instance_scores


def _reference_stages(codec, heatmaps: Tensor, tags: Tensor, timer: StageTimer) -> ParseResult:
    """``parse_reference``, one timed stage at a time (same calls, same order)."""
    with timer('nms_topk'):
        heatmaps, tags = prepare_maps(heatmaps, tags)
        num_keypoints = heatmaps.shape[0]
        candidates = official_candidates(heatmaps, tags, codec.decode_nms_kernel,
                                         codec.decode_topk)
    with timer('grouping'):
        people = match_by_tag(*candidates, codec.grouping_order(num_keypoints),
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
