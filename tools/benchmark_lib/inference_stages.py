"""``mmpose.apis.inference_bottomup`` as a user calls it, cut into its stages.

Per image: the call itself, end to end, and each of its steps run one by one as the call runs
them: building the test pipeline (``Compose`` of the config's transforms, which
``inference_bottomup`` does on every call), loading, the test resize, packing, collating, the
data preprocessor, the network (backbone + head forward of the image and its mirror), the
head's aggregation, the decoder, mmpose's back-projection to image pixels and our person boxes
(:func:`keypoint_extent`). "Outside the network" is the end-to-end time minus the network.
"""
import copy
from pathlib import Path
from typing import List, Sequence

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


def time_inference(model, paths: Sequence[Path], repeats: int) -> List[dict]:
    """One row per image: ms of ``inference_bottomup`` end to end and of each stage (medians).

    Args:
        model (nn.Module): A model ready for ``inference_bottomup`` (:func:`default_init_model`).
        paths (Sequence[Path]): Images.
        repeats (int): Timed runs (median) after one untimed run.

    Returns:
        List[dict]: ``image``, ``end_to_end_ms``, ``stages_ms`` (``INFERENCE_STAGES``),
        ``outside_ms`` (end to end minus network), ``outside_percent`` (of the network),
        ``persons``.
    """
    rows = []
    for path in paths:
        with torch.no_grad():
            end_to_end, result = median_seconds(lambda: inference_bottomup(model, str(path)),
                                                repeats)
        runs = []
        for _ in range(max(1, repeats)):
            timer = StageTimer()
            staged_inference(model, path, timer)
            runs.append(timer.seconds)
        stages = {
            name: 1e3 * sorted(run[name] for run in runs)[len(runs) // 2]
            for name in INFERENCE_STAGES
        }
        outside = 1e3 * end_to_end - stages['network']
        rows.append(
            dict(image=f'{path.parent.name}/{path.name}',
                 end_to_end_ms=1e3 * end_to_end,
                 stages_ms=stages,
                 outside_ms=outside,
                 outside_percent=100.0 * outside / stages['network'],
                 persons=len(result[0].pred_instances)))
    return rows


INFERENCE_HEADERS = ('image', 'persons', 'end to end', *INFERENCE_STAGES, 'outside network',
                     'outside % of network')


def inference_table(rows: Sequence[dict]) -> List[List]:
    """Rows of the report's inference table (``INFERENCE_HEADERS``)."""
    return [[
        r['image'], r['persons'], r['end_to_end_ms'], *(r['stages_ms'][s]
                                                        for s in INFERENCE_STAGES),
        r['outside_ms'], r['outside_percent']
    ] for r in rows]

