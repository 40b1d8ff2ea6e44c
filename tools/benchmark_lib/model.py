"""The model's test step cut into timed stages: pre-process, network, aggregation, decoding."""
import copy
import logging
import warnings
from contextlib import contextmanager, redirect_stdout
from io import StringIO
from pathlib import Path
from typing import Dict, Iterator, List, Optional, Sequence, Tuple

import numpy as np
import torch
from mmcv.transforms import Compose
from mmengine.config import Config
from mmengine.dataset import pseudo_collate
from mmengine.logging import MMLogger
from mmengine.runner import load_checkpoint
from mmengine.structures import InstanceData
from mmpose.apis.inference import dataset_meta_from_config
from mmpose.registry import MODELS
from mmpose.structures import PoseDataSample
from torch import Tensor

from higherhrnet_plugin.datasets.transforms import HigherHRNetResize
from higherhrnet_plugin.models.utils import FlipPair, aggregate_scales

from .decoders import Decoder, time_decoder
from .maps import SYNTHETIC_SIGMA, SYNTHETIC_VARIANTS, Persons, crowd_layout, synthetic_maps
from .timing import median_seconds


def time_back_projection(model, keypoints: np.ndarray, meta: dict, repeats: int) -> float:
    """ms of mmpose's ``add_pred_to_datasample`` for ``keypoints`` (N, K, 2)."""
    sample = PoseDataSample(metainfo=meta)

    def project():
        pred = InstanceData(keypoints=keypoints.copy(),
                            keypoint_scores=np.ones(keypoints.shape[:2], np.float32),
                            bbox_scores=np.ones(len(keypoints), np.float32))
        return model.add_pred_to_datasample([pred], None, [sample])

    return 1e3 * median_seconds(project, repeats)[0]


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


def network(model, inputs: Tensor) -> FlipPair:
    """Backbone + head forward of the inputs and of their mirror."""
    return FlipPair(*(model.head.forward(model.extract_feat(x))
                      for x in (inputs, inputs.flip(-1))))


def aggregate(model, views: FlipPair, canvas: Tuple[int, int],
              flip_indices: Sequence[int]) -> Tuple[Tensor, Tensor]:
    """The head's test-time aggregation of one sample: (K, H, W) heatmaps, (K, H, W, L) tags."""
    aggregation = model.test_cfg.get('aggregation', 'official')
    heatmaps, tags = aggregate_scales([views], [1.0], canvas, model.head.layout, flip_indices,
                                      aggregation)
    return heatmaps[0], tags[0]


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
