"""Eager torch vs the exported graph in onnxruntime (CPU), stage by stage, on real images.

For each flip setting the model is exported once (:mod:`higherhrnet_plugin.deploy.export`,
the torchscript exporter: the same graph as the default one in a fraction of the time), then
every image goes through both paths, timed per stage:

==================  ===========================================  ===============================
stage               eager torch                                  onnxruntime
==================  ===========================================  ===============================
pre-process         the config's test pipeline (``LoadImage``,   ``read_image``, ``to_canvas``,
                    ``HigherHRNetResize``, ``PackPoseInputs``)    ``normalize`` (numpy, OpenCV)
                    + the data preprocessor
network + aggreg.   :class:`InferenceGraph` in torch: network,    the same graph in onnxruntime
                    flip pass, aggregation, NMS map
decode              the config's codec (``decode``)              ``decode_maps`` (numpy)
back-projection     mmpose's ``add_pred_to_datasample``          ``canvas_to_image``
end to end          ``mmpose.apis.inference_bottomup``           ``OnnxPoseEstimator`` on the
                                                                 decoded image + reading it
==================  ===========================================  ===============================

Both run with the same number of threads. Images/s is 1000 / the mean end-to-end ms.
"""
import tempfile
from pathlib import Path
from typing import Dict, List, Sequence, Tuple

import numpy as np
import onnx
import torch
from mmcv.transforms import Compose
from mmengine.config import Config
from mmpose.apis import inference_bottomup

from higherhrnet_plugin.deploy import (OnnxPoseEstimator, decode_maps, normalize, read_image,
                                       to_canvas)
from higherhrnet_plugin.deploy.export import InferenceGraph, deploy_settings, export_graph
from higherhrnet_plugin.structures import canvas_to_image

from .model import preprocess, time_back_projection
from .timing import median_seconds

DEPLOY_STAGES = ('preprocess', 'graph', 'decode', 'back_projection', 'end_to_end')
RUNTIMES = ('torch', 'onnxruntime')


def time_deploy(cfg: Config, model, paths: Sequence[Path], flips: Sequence[bool], threads: int,
                repeats: int) -> List[dict]:
    """One row per (flip, image, runtime): ms per stage (medians), canvas, persons.

    Args:
        cfg (Config): The model's config (test pipeline, data preprocessor, codec).
        model (nn.Module): The built model in eval mode (weights loaded); its
            ``test_cfg['flip_test']`` is set per flip setting and restored.
        paths (Sequence[Path]): Real images.
        flips (Sequence[bool]): Flip settings to export and time.
        threads (int): torch and onnxruntime intra-op threads.
        repeats (int): Timed runs per stage (median), after one untimed run.
    """
    model.cfg = cfg  # deploy_settings reads the test pipeline and preprocessor from it
    pipeline = Compose(cfg.test_dataloader.dataset.pipeline)
    test_cfg, rows = model.test_cfg, []
    try:
        with tempfile.TemporaryDirectory() as tmp:
            for flip in flips:
                model.test_cfg = dict(test_cfg, flip_test=flip)
                graph, estimator = _export(model, flip, paths[0], Path(tmp) / 'model.onnx',
                                           threads)
                for path in paths:
                    rows += _time_image(model, pipeline, graph, estimator, path, repeats)
    finally:
        model.test_cfg = test_cfg
    return rows


def _export(model, flip: bool, image: Path, out: Path,
            threads: int) -> Tuple[InferenceGraph, OnnxPoseEstimator]:
    """The eager graph with ``flip`` and its export, loaded in onnxruntime."""
    settings = deploy_settings(model, flip)
    graph = InferenceGraph(model, settings.flip_indices if flip else None, settings.aggregation,
                           settings.decode_options['nms_kernel']).eval()
    inputs = normalize(to_canvas(read_image(image), settings)[0], settings)
    onnx.save_model(export_graph(graph, inputs, settings, 'torchscript'), str(out))
    return graph, OnnxPoseEstimator(out, threads=threads)


def _time_image(model, pipeline: Compose, graph: InferenceGraph, estimator: OnnxPoseEstimator,
                path: Path, repeats: int) -> List[dict]:
    """The torch and onnxruntime rows of one image."""
    eager, result, maps = _time_eager(model, pipeline, graph, path, repeats)
    onnx_runtime, decoded, outputs, canvas = _time_onnxruntime(estimator, path, repeats)
    common = dict(flip=estimator.settings.flip_test,
                  image=f'{path.parent.name}/{path.name}',
                  canvas=list(canvas),
                  max_map_difference=float(np.abs(outputs[0] - maps[0].numpy()).max()))
    return [
        dict(common, runtime='torch', persons=len(result[0]), **_ms(eager)),
        dict(common, runtime='onnxruntime', persons=len(decoded[0]), **_ms(onnx_runtime)),
    ]


def _time_eager(model, pipeline: Compose, graph: InferenceGraph, path: Path, repeats: int):
    """Seconds per stage of the torch path, its decoded persons and maps."""
    seconds = {}
    data_info = dict(img_path=str(path), **model.dataset_meta)
    seconds['preprocess'], data = median_seconds(lambda: preprocess(model, pipeline, data_info),
                                                 repeats)
    with torch.no_grad():
        seconds['graph'], maps = median_seconds(lambda: graph(data['inputs']), repeats)
    heatmaps, tags, _ = (m[0] for m in maps)
    seconds['decode'], result = median_seconds(lambda: model.head.decoder.decode(heatmaps, tags),
                                               repeats)
    meta = data['data_samples'][0].metainfo
    seconds['back_projection'] = time_back_projection(model, result[0], meta, repeats) / 1e3
    with torch.no_grad():
        seconds['end_to_end'], _ = median_seconds(lambda: inference_bottomup(model, str(path)),
                                                  repeats)
    return seconds, result, maps


def _time_onnxruntime(estimator: OnnxPoseEstimator, path: Path, repeats: int):
    """Seconds per stage of the onnxruntime path, its decoded persons, maps and canvas."""
    seconds = {}
    seconds['preprocess'], (inputs, meta) = median_seconds(
        lambda: estimator.preprocess(read_image(path)), repeats)
    seconds['graph'], outputs = median_seconds(lambda: estimator.run_graph(inputs), repeats)
    maps = [m[0] for m in outputs]
    seconds['decode'], decoded = median_seconds(
        lambda: decode_maps(*maps, estimator.settings), repeats)
    seconds['back_projection'], _ = median_seconds(lambda: canvas_to_image(decoded[0], *meta),
                                                   repeats)
    seconds['end_to_end'], _ = median_seconds(lambda: estimator(read_image(path)), repeats)
    return seconds, decoded, outputs, meta[0]


def _ms(seconds: Dict[str, float]) -> Dict[str, float]:
    return {f'{stage}_ms': 1e3 * seconds[stage] for stage in DEPLOY_STAGES}


def summary_rows(rows: List[dict]) -> List[dict]:
    """Per (flip, runtime): mean ms per stage over the images, images/s, speed-up vs torch."""
    summary = []
    for flip in dict.fromkeys(r['flip'] for r in rows):
        means = {}
        for runtime in RUNTIMES:
            mine = [r for r in rows if r['flip'] == flip and r['runtime'] == runtime]
            means[runtime] = {
                f'{s}_ms': float(np.mean([r[f'{s}_ms'] for r in mine]))
                for s in DEPLOY_STAGES
            }
        for runtime in RUNTIMES:
            end_to_end = means[runtime]['end_to_end_ms']
            summary.append(
                dict(flip=flip,
                     runtime=runtime,
                     images=len(mine),
                     **means[runtime],
                     images_per_second=1e3 / end_to_end,
                     speedup=means['torch']['end_to_end_ms'] / end_to_end))
    return summary
