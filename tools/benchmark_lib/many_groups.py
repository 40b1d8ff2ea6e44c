"""The decoder's worst case: a real image through a random network that finds hundreds of groups.

A network early in training gives heatmaps above the detection threshold nearly everywhere and
tags spread over tens of units, so nearly every candidate starts its own group; ``mim train``
validates such networks. The model is W32-512 built with PyTorch's default initialisation from
``torch.manual_seed(seed)`` and BatchNorm statistics of the image itself: every BN layer's
running mean and variance are set by one train-mode forward pass of the image (``momentum=None``,
a plain average over that one batch), as a trained network's statistics match its data. On COCO
image 785 (640x425, canvas 832x512) with the official thresholds this gives 504 groups (seed 0);
without the BN step the maps are nearly flat and give ~30.

The network runs once (its time is reported, with ``torch.set_flush_denormal(True)`` around it
only: random weights can make the CPU crawl through denormal numbers), then the post-processing
stages are timed on its maps: aggregation, each decoder, back-projection.
"""
import time
from pathlib import Path
from typing import Callable, Dict, List, Sequence

import torch
from mmcv.transforms import Compose
from mmengine.config import Config
from mmpose.apis.inference import dataset_meta_from_config
from mmpose.registry import KEYPOINT_CODECS, MODELS

from .model import aggregate, network, preprocess, quiet, time_back_projection
from .paths import SHARED_DATA
from .timing import median_seconds

MANY_GROUPS_IMAGE = SHARED_DATA / 'coco' / '000000000785.jpg'


def image_statistics_model(cfg: Config, image: Path, seed: int = 0) -> torch.nn.Module:
    """The config's model, default init from ``seed``, BN statistics of ``image``; eval mode.

    Args:
        cfg (Config): Model config (W32-512 for the section).
        image (Path): The image whose statistics the BN layers take.
        seed (int): ``torch.manual_seed`` before building. Defaults to ``0``.

    Returns:
        nn.Module: The model, in eval mode, on CPU.
    """
    cfg = cfg.copy()
    cfg.model.backbone.init_cfg = None
    torch.manual_seed(seed)
    model = MODELS.build(cfg.model)
    with quiet():
        model.dataset_meta = dataset_meta_from_config(cfg, 'test')
    data = preprocess(model, Compose(cfg.test_dataloader.dataset.pipeline),
                      dict(img_path=str(image), **model.dataset_meta))
    for module in model.modules():
        if isinstance(module, torch.nn.modules.batchnorm._BatchNorm):
            module.reset_running_stats()
            module.momentum = None  # the running statistics become this batch's
    model.train()
    with torch.no_grad(), flushed_denormals():
        model.head.forward(model.extract_feat(data['inputs']))
    return model.eval()


class flushed_denormals:
    """``torch.set_flush_denormal(True)`` inside the block (benchmark network timing only)."""

    def __enter__(self):
        self.before = torch.set_flush_denormal(True)

    def __exit__(self, *exc):
        torch.set_flush_denormal(False)


def time_many_groups(cfg: Config, decoders: Dict[str, Callable], repeats: int,
                     image: Path = MANY_GROUPS_IMAGE, seed: int = 0) -> List[dict]:
    """One row per decoder: ms of each post-processing stage on the many-groups maps.

    Args:
        cfg (Config): Model config.
        decoders (Dict[str, Callable]): name -> ``decode(heatmaps, tags)``
            (:func:`many_groups_decoders`).
        repeats (int): Timed runs per stage (median) after one untimed run; decoders that
            take over 10 s run once.
        image (Path): The image. Defaults to COCO 785.
        seed (int): Model seed. Defaults to ``0``.

    Returns:
        List[dict]: ``decoder``, ``groups``, ``preprocess_ms``, ``network_ms``,
        ``aggregation_ms``, ``decode_ms``, ``back_projection_ms``, ``post_ms`` (everything but
        the network: pre-process, aggregation, decode, back-projection).
    """
    model = image_statistics_model(cfg, image, seed)
    pipeline = Compose(cfg.test_dataloader.dataset.pipeline)
    data_info = dict(img_path=str(image), **model.dataset_meta)
    pre, data = median_seconds(lambda: preprocess(model, pipeline, data_info), repeats)
    meta = data['data_samples'][0].metainfo
    canvas = tuple(int(v) for v in meta['input_size'])
    start = time.perf_counter()
    with torch.no_grad(), flushed_denormals():
        views = network(model, data['inputs'])
    net = time.perf_counter() - start
    with torch.no_grad():
        agg, (heatmaps, tags) = median_seconds(
            lambda: aggregate(model, views, canvas, meta['flip_indices']), repeats)
    rows = []
    for name, decode in decoders.items():
        once = time.perf_counter()
        decode(heatmaps, tags)
        runs = repeats if time.perf_counter() - once < 10 else 1
        seconds, (keypoints, _, _) = median_seconds(lambda: decode(heatmaps, tags), runs, 0)
        back = time_back_projection(model, keypoints, meta, repeats)
        rows.append(
            dict(decoder=name,
                 image=f'{image.parent.name}/{image.name}',
                 canvas=list(canvas),
                 groups=len(keypoints),
                 preprocess_ms=1e3 * pre,
                 network_ms=1e3 * net,
                 aggregation_ms=1e3 * agg,
                 decode_ms=1e3 * seconds,
                 back_projection_ms=back,
                 post_ms=1e3 * (pre + agg + seconds) + back))
    return rows


def many_groups_decoders(codec_cfg: dict, names: Sequence[str]) -> Dict[str, Callable]:
    """decode(heatmaps, tags) of each of ``names``: 'fast' (peaks refine), 'fast full',
    'reference' (the official parser; minutes on these maps)."""
    settings = {
        'fast': dict(decode_mode='fast'),
        'fast full': dict(decode_mode='fast', decode_refine_search='full'),
        'reference': dict(decode_mode='reference'),
    }
    codecs = {name: KEYPOINT_CODECS.build(dict(codec_cfg, **settings[name])) for name in names}
    return {
        name: (lambda h, t, codec=codec: codec.batch_decode(h[None], t[None])[0])
        for name, codec in codecs.items()
    }


def many_groups_table(rows: Sequence[dict]) -> List[List]:
    """Rows of the report's many-groups table (see ``MANY_GROUPS_HEADERS``)."""
    return [[
        r['decoder'], r['groups'], r['preprocess_ms'], r['aggregation_ms'], r['decode_ms'],
        r['back_projection_ms'], r['post_ms'], r['network_ms']
    ] for r in rows]


MANY_GROUPS_HEADERS = ('decoder', 'groups', 'pre-process', 'aggregation', 'decode', 'back-proj',
                       'post-processing', 'network (orig+flip, once)')
