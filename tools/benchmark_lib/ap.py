"""Round-trip AP: GT keypoints -> maps -> decode -> back-projection -> mmpose CocoMetric."""
import json
import os
import tempfile
from pathlib import Path
from typing import Dict, List, NamedTuple, Sequence

import numpy as np
import torch
from mmpose.datasets.datasets.utils import parse_pose_metainfo
from mmpose.evaluation.metrics import CocoMetric

from higherhrnet_plugin.datasets.transforms import HigherHRNetResize

from .decoders import Decoder, build_decoders
from .maps import canvas_to_image, image_to_canvas, load_persons, synthetic_maps
from .model import quiet


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
