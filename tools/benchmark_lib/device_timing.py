"""Network, aggregation and decoding on an accelerator (``--device cuda``), per image.

The model and the inputs are moved to the device; aggregation runs there (torch), and the
codec's ``batch_decode`` takes its device path (NMS and top-k on the device, grouping on the
host: :mod:`higherhrnet_plugin.codecs.utils.grouping_device`). Every timed call ends with a
device synchronisation, so the times are those of finished work. Batches are one COCO image
replicated B times (equal canvases, no padding). Images/s = B / (network + aggregation +
decode) of one batch.
"""
from pathlib import Path
from typing import List, Sequence

import torch
from mmcv.transforms import Compose
from mmengine.dataset import pseudo_collate

from higherhrnet_plugin.models.utils import FlipPair, aggregate_scales

from .timing import median_seconds

DEVICE_STAGES = ('network', 'aggregation', 'decode')


def require_device(device: str) -> torch.device:
    """``torch.device(device)``, refused with a message when it is not available."""
    device = torch.device(device)
    if device.type == 'cuda' and not torch.cuda.is_available():
        raise SystemExit('--device cuda: torch sees no CUDA device here '
                         f'(torch {torch.__version__}, cuda {torch.version.cuda})')
    return device


def synchronized(fn, device: torch.device):
    """``fn`` followed by a synchronisation of ``device`` (no-op on CPU)."""

    def call():
        result = fn()
        if device.type == 'cuda':
            torch.cuda.synchronize(device)
        return result

    return call


def time_device(model, pipeline: Compose, image: Path, device: str, batch_sizes: Sequence[int],
                repeats: int) -> List[dict]:
    """One row per batch size: ms per image of each stage and images/s on ``device``.

    Args:
        model (nn.Module): The model in eval mode (moved to ``device`` here).
        pipeline (Compose): The config's test pipeline.
        image (Path): The image replicated into batches.
        device (str): ``'cuda'``, ``'cuda:1'``, ... (``'cpu'`` works too, for tests).
        batch_sizes (Sequence[int]): Batch sizes to time.
        repeats (int): Timed runs per stage (median) after one untimed run.

    Returns:
        List[dict]: ``device``, ``batch_size``, ``canvas``, ``stages_ms`` (per image),
        ``images_per_second``, ``persons``.
    """
    device = require_device(device)
    model = model.to(device)
    rows = []
    for batch_size in batch_sizes:
        data = pseudo_collate(
            [pipeline(dict(img_path=str(image), **model.dataset_meta)) for _ in range(batch_size)])
        with torch.no_grad():
            data = model.data_preprocessor(data, False)
            inputs = data['inputs'].to(device)
            meta = data['data_samples'][0].metainfo
            canvas = tuple(int(v) for v in meta['input_size'])

            def forward():
                return FlipPair(*(model.head.forward(model.extract_feat(x))
                                  for x in (inputs, inputs.flip(-1))))

            net, views = median_seconds(synchronized(forward, device), repeats)

            def aggregate():
                return aggregate_scales([views], [1.0], canvas, model.head.layout,
                                        meta['flip_indices'],
                                        model.test_cfg.get('aggregation', 'official'))

            agg, (heatmaps, tags) = median_seconds(synchronized(aggregate, device), repeats)
        decode, results = median_seconds(
            synchronized(lambda: model.head.decoder.batch_decode(heatmaps, tags), device),
            repeats)
        seconds = dict(network=net, aggregation=agg, decode=decode)
        rows.append(
            dict(device=str(device),
                 batch_size=batch_size,
                 canvas=list(canvas),
                 stages_ms={name: 1e3 * s / batch_size
                            for name, s in seconds.items()},
                 images_per_second=batch_size / sum(seconds.values()),
                 persons=int(len(results[0][0]))))
    return rows


DEVICE_HEADERS = ('device', 'batch', 'canvas', 'network ms/image', 'aggregation ms/image',
                  'decode ms/image', 'images/s', 'persons')


def device_table(rows: Sequence[dict]) -> List[List]:
    """Rows of the report's device table (``DEVICE_HEADERS``)."""
    return [[
        r['device'], r['batch_size'], 'x'.join(map(str, r['canvas'])),
        *(r['stages_ms'][s] for s in DEVICE_STAGES), r['images_per_second'], r['persons']
    ] for r in rows]
