"""``mmpose.apis.inference_bottomup`` as a user calls it, cut into its stages.

Per image: the call itself, end to end, and each of its steps run one by one as the call runs
them: building the test pipeline (``Compose`` of the config's transforms, which
``inference_bottomup`` does on every call), loading, the test resize, packing, collating, the
data preprocessor, the network (backbone + head forward of the image and its mirror), the
head's aggregation, the decoder, mmpose's back-projection to image pixels and our person boxes
(:func:`keypoint_extent`). "Outside the network" is each end-to-end call's time minus the time
that same call spent in the backbone and head forward (:func:`network_clock`): two separate
runs of a 2-second network differ by more than the 5% being measured.
"""
import copy
import statistics
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator, List, Sequence

import torch
from mmcv.transforms import Compose
from mmengine.config import Config
from mmengine.dataset import pseudo_collate
from mmpose.apis import inference_bottomup
from mmpose.apis.inference import dataset_meta_from_config
from mmpose.registry import MODELS

from higherhrnet_plugin.models.pose_estimators.higher_hrnet import keypoint_extent

from .model import aggregate, network, quiet
from .timing import StageTimer, median_seconds

INFERENCE_STAGES = ('pipeline', 'load', 'resize', 'pack', 'collate', 'data_preprocessor',
                    'network', 'aggregation', 'decode', 'back_projection', 'boxes')


def default_init_model(cfg: Config, seed: int = 0) -> torch.nn.Module:
    """The config's model with PyTorch's default initialisation (``torch.manual_seed(seed)``),
    in eval mode, ready for ``inference_bottomup`` (``cfg`` and ``dataset_meta`` set)."""
    cfg = copy.deepcopy(cfg)
    cfg.model.backbone.init_cfg = None
    torch.manual_seed(seed)
    model = MODELS.build(cfg.model)
    model.cfg = cfg
    with quiet():
        model.dataset_meta = dataset_meta_from_config(cfg, 'test')
    return model.eval()


def staged_inference(model, path: Path, timer: StageTimer) -> None:
    """``inference_bottomup(model, path)``, one timed stage at a time."""
    with timer('pipeline'):
        transforms = Compose(model.cfg.test_dataloader.dataset.pipeline).transforms
    data = dict(img_path=str(path), **model.dataset_meta)
    for name, transform in zip(('load', 'resize', 'pack'), transforms):
        with timer(name):
            data = transform(data)
    with timer('collate'):
        batch = pseudo_collate([data])
    with torch.no_grad():
        with timer('data_preprocessor'):
            batch = model.data_preprocessor(batch, False)
        sample = batch['data_samples'][0]
        meta = sample.metainfo
        with timer('network'):
            views = network(model, batch['inputs'])
        with timer('aggregation'):
            heatmaps, tags = aggregate(model, views, tuple(int(v) for v in meta['input_size']),
                                       meta['flip_indices'])
    with timer('decode'):
        instances = model.head._decode(heatmaps, tags)
    with timer('boxes'):
        instances.bboxes = keypoint_extent(instances.keypoints, instances.keypoint_scores)
    with timer('back_projection'):
        model.add_pred_to_datasample([instances], None, [sample])


@contextmanager
def network_clock(model) -> Iterator[List[float]]:
    """Within the block, seconds spent in ``model.extract_feat`` and ``model.head.forward``
    (every view, every scale) accumulate in the yielded one-element list."""
    spent = [0.0]

    def timed(fn):

        def wrapper(*args, **kwargs):
            start = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                spent[0] += time.perf_counter() - start

        return wrapper

    model.extract_feat = timed(model.extract_feat)  # instance attributes shadow the methods
    model.head.forward = timed(model.head.forward)
    try:
        yield spent
    finally:
        del model.extract_feat, model.head.forward


def time_end_to_end(model, path: Path, repeats: int) -> dict:
    """``inference_bottomup`` after one untimed call: medians of its time, of the network's
    part of it and of the rest (ms, each call's own difference), and the person count."""
    with torch.no_grad():
        result = inference_bottomup(model, str(path))
        runs = []
        for _ in range(max(1, repeats)):
            with network_clock(model) as network_seconds:
                start = time.perf_counter()
                inference_bottomup(model, str(path))
                total = time.perf_counter() - start
            runs.append((total, network_seconds[0]))
    outside = [total - net for total, net in runs]
    return dict(end_to_end_ms=1e3 * statistics.median(total for total, _ in runs),
                network_in_call_ms=1e3 * statistics.median(net for _, net in runs),
                outside_ms=1e3 * statistics.median(outside),
                outside_percent=100.0 * statistics.median(o / net for o, (_, net) in zip(
                    outside, runs)),
                persons=len(result[0].pred_instances))


def time_inference(model, paths: Sequence[Path], repeats: int) -> List[dict]:
    """One row per image: ms of ``inference_bottomup`` end to end and of each stage (medians).

    Args:
        model (nn.Module): A model ready for ``inference_bottomup`` (:func:`default_init_model`).
        paths (Sequence[Path]): Images.
        repeats (int): Timed runs (median) after one untimed run.

    Returns:
        List[dict]: ``image``, ``end_to_end_ms``, ``network_in_call_ms``, ``stages_ms``
        (``INFERENCE_STAGES``, run one by one), ``outside_ms`` and ``outside_percent`` (of the
        network time of the same call; :func:`time_end_to_end`), ``persons``.
    """
    rows = []
    for path in paths:
        row = time_end_to_end(model, path, repeats)
        runs = []
        for _ in range(max(1, repeats)):
            timer = StageTimer()
            staged_inference(model, path, timer)
            runs.append(timer.seconds)
        row['stages_ms'] = {
            name: 1e3 * sorted(run[name] for run in runs)[len(runs) // 2]
            for name in INFERENCE_STAGES
        }
        rows.append(dict(image=f'{path.parent.name}/{path.name}', **row))
    return rows


INFERENCE_HEADERS = ('image', 'persons', 'end to end', 'network in the call', 'outside network',
                     'outside % of network', *(f'staged {stage}' for stage in INFERENCE_STAGES))


def inference_table(rows: Sequence[dict]) -> List[List]:
    """Rows of the report's inference table (``INFERENCE_HEADERS``)."""
    return [[
        r['image'], r['persons'], r['end_to_end_ms'], r['network_in_call_ms'], r['outside_ms'],
        r['outside_percent'], *(r['stages_ms'][s] for s in INFERENCE_STAGES)
    ] for r in rows]

