"""Export a HigherHRNet config + checkpoint to one verified .onnx file.

The graph is :class:`InferenceGraph` (network, flip test, aggregation, NMS peak map) with
dynamic batch, height and width, exported by torch's default (dynamo) ONNX exporter; the
test-time settings go into the file's metadata (:class:`..DeploySettings`). Before the file
appears at its path, onnx's checker passes it and onnxruntime runs it on a real image and
matches the eager model there (:func:`verify`); it is written to a hidden sibling and renamed
into place, so a failed export writes nothing.

Note:
    - keypoint number: K
    - canvas size: (W, H)
"""
import io
import time
import uuid
import warnings
from pathlib import Path
from typing import Dict, Optional, Tuple, Union

import numpy as np
import onnx
import onnxruntime as ort
import torch
from mmengine.config import Config
from mmengine.runner import load_checkpoint
from mmpose.apis import init_model
from scipy.ndimage import maximum_filter
from torch import nn

from ...engine.fileio import durable_replace
from ..deploy_error import DeployError
from ..deploy_settings import GRAPH_INPUT, GRAPH_OUTPUTS, DeploySettings
from ..preprocess import normalize, read_image, to_canvas
from .inference_graph import InferenceGraph

EXPORTERS = ('dynamo', 'torchscript')
# Heatmaps and tags must match the eager model within this fraction of their largest value
# (at least 1e-4 absolute): float32 convolutions in another order differ by ~1e-6.
TOLERANCE = 1e-4
_PREPROCESSOR_NORMALIZATION = dict(HigherHRNetDataPreprocessor='official',
                                   PoseDataPreprocessor='mmpose')
PathLike = Union[str, Path]


def export_onnx(config: PathLike,
                checkpoint: PathLike,
                out: PathLike,
                verify_image: PathLike,
                flip: Optional[bool] = None,
                exporter: str = 'dynamo') -> Dict:
    """Export, check and verify; the file appears at ``out`` only if all of it passes.

    Args:
        config (str | Path): Model config.
        checkpoint (str | Path): Checkpoint that fits the config exactly (strict loading).
        out (str | Path): The .onnx file to write; its folder must exist.
        verify_image (str | Path): Real image the exported graph is compared on.
        flip (bool, optional): Flip test in the graph; ``None`` takes the config's
            ``model.test_cfg.flip_test``. Defaults to ``None``.
        exporter (str): ``'dynamo'`` (torch's default) or ``'torchscript'`` (faster, see
            :func:`export_graph`). Defaults to ``'dynamo'``.

    Returns:
        dict: ``out``, the verification ``canvas`` (W, H), the largest ``differences`` per
        output and the export ``seconds``.

    Raises:
        DeployError: A missing or unusable input, or a graph that fails the checks.
    """
    out = _check_request(Path(config), Path(checkpoint), Path(out), Path(verify_image), exporter)
    start = time.perf_counter()
    model = load_model(Path(config), Path(checkpoint))
    settings = deploy_settings(model, flip)
    nms_kernel = settings.decode_options['nms_kernel']
    graph = InferenceGraph(model, settings.flip_indices if settings.flip_test else None,
                           settings.aggregation, nms_kernel).eval()
    inputs = normalize(to_canvas(read_image(verify_image), settings)[0], settings)
    differences = write_verified(export_graph(graph, inputs, settings, exporter), out, graph,
                                 inputs, nms_kernel)
    return dict(out=str(out),
                canvas=(inputs.shape[3], inputs.shape[2]),
                differences=differences,
                seconds=time.perf_counter() - start)


def write_verified(proto: onnx.ModelProto, out: Path, graph: InferenceGraph, inputs: np.ndarray,
                   nms_kernel: int) -> Dict[str, float]:
    """Save ``proto`` to a hidden sibling of ``out``, :func:`verify` that file and rename it
    onto ``out``; on any failure the sibling is removed and ``out`` is untouched.

    Returns:
        Dict[str, float]: :func:`verify`'s differences.
    """
    tmp = out.with_name(f'.{out.stem}.{uuid.uuid4().hex[:8]}.partial{out.suffix}')
    try:
        onnx.save_model(proto, str(tmp))
        differences = verify(tmp, graph, inputs, nms_kernel)
        durable_replace(tmp, out)
    finally:
        tmp.unlink(missing_ok=True)
    return differences


def _check_request(config: Path, checkpoint: Path, out: Path, verify_image: Path,
                   exporter: str) -> Path:
    """Refuse missing inputs, an output nobody could write and an unknown exporter, before
    any work."""
    for what, path in (('config', config), ('checkpoint', checkpoint),
                       ('verification image', verify_image)):
        if not path.is_file():
            raise DeployError(f'{what} not found: {path}')
    if not out.parent.is_dir():
        raise DeployError(f'output folder does not exist: {out.parent}')
    if out.is_dir():
        raise DeployError(f'output path is a folder: {out}')
    if exporter not in EXPORTERS:
        raise DeployError(f'exporter must be one of {EXPORTERS}, got {exporter!r}')
    return out


def load_model(config: Path, checkpoint: Path) -> nn.Module:
    """The config's model with every weight of ``checkpoint`` (strict), CPU, eval mode."""
    try:
        cfg = Config.fromfile(str(config))
        model = init_model(cfg, None, device='cpu')
    except Exception as error:  # a config mmpose cannot build: say which file and why
        raise DeployError(f'cannot build a model from config {config}: '
                          f'{type(error).__name__}: {error}') from error
    head = getattr(model, 'head', None)
    if getattr(head, 'layout', None) is None or getattr(head, 'decoder', None) is None:
        raise DeployError(f'config {config} builds {type(model).__name__} with head '
                          f'{type(head).__name__}; export needs a HigherHRNet head '
                          '(AEHigherResolutionHead or a subclass) with a decoder')
    try:
        meta = load_checkpoint(model, str(checkpoint), map_location='cpu', strict=True,
                               logger='silent').get('meta', {})
    except Exception as error:
        raise DeployError(f'checkpoint {checkpoint} does not fit config {config}: '
                          f'{type(error).__name__}: {error}') from error
    # As mmpose's init_model: the checkpoint's dataset meta wins over the config's.
    model.dataset_meta = meta.get('dataset_meta', model.dataset_meta)
    return model.eval()


def deploy_settings(model: nn.Module, flip: Optional[bool] = None) -> DeploySettings:
    """The settings of a model built from a config (its ``model.cfg``), as the eager test
    pipeline uses them.

    Raises:
        DeployError: Settings the graph cannot reproduce (multi-scale test, padding).
    """
    cfg = model.cfg
    test_cfg = cfg.model.get('test_cfg') or {}
    if test_cfg.get('multiscale_test', False):
        raise DeployError('multi-scale test is not exported; set '
                          'model.test_cfg.multiscale_test=False')
    resize = _test_resize(cfg)
    head, codec, meta = model.head, model.head.decoder, model.dataset_meta
    options = codec.parser_options(head.num_keypoints)
    options['keypoint_order'] = list(options['keypoint_order'])  # as JSON gives it back
    return DeploySettings(
        input_size=resize['input_size'],
        num_keypoints=head.num_keypoints,
        flip_test=bool(test_cfg.get('flip_test', False) if flip is None else flip),
        flip_indices=tuple(int(i) for i in meta['flip_indices']),
        rounding=resize.get('rounding', 'official'),
        aggregation=test_cfg.get('aggregation', 'official'),
        decode_mode=codec.decode_mode,
        decode_options=options,
        keypoint_names=tuple(meta['keypoint_id2name'][k] for k in range(head.num_keypoints)),
        **_normalization(cfg.model.data_preprocessor))


def _normalization(preprocessor: dict) -> dict:
    """``mean``, ``std``, ``swap_channels`` and ``normalization`` of a data preprocessor
    config, refused where the deployment would not reproduce it."""
    normalization = preprocessor.get('normalization',
                                     _PREPROCESSOR_NORMALIZATION.get(preprocessor['type']))
    if normalization is None or 64 % preprocessor.get('pad_size_divisor', 1):
        raise DeployError(f'data preprocessor {dict(preprocessor)} is not reproduced: '
                          'need HigherHRNetDataPreprocessor or PoseDataPreprocessor with a '
                          'pad_size_divisor dividing 64')
    return dict(mean=tuple(float(v) for v in preprocessor['mean']),
                std=tuple(float(v) for v in preprocessor['std']),
                swap_channels=bool(preprocessor.get('bgr_to_rgb')
                                   or preprocessor.get('rgb_to_bgr')),
                normalization=normalization)


def _test_resize(cfg: Config) -> dict:
    """The test pipeline's ``HigherHRNetResize`` step, single-scale."""
    steps = [s for s in cfg.test_dataloader.dataset.pipeline if s['type'] == 'HigherHRNetResize']
    if len(steps) != 1 or steps[0].get('aug_scales'):
        raise DeployError('the test pipeline needs exactly one single-scale '
                          f'HigherHRNetResize, found {steps}')
    return {'input_size': 512, **steps[0]}


def export_graph(graph: InferenceGraph,
                 inputs: np.ndarray,
                 settings: DeploySettings,
                 exporter: str = 'dynamo') -> onnx.ModelProto:
    """The checked ONNX model of ``graph``: dynamic batch and canvas, settings in metadata.

    ``'dynamo'`` is torch's default exporter (``torch.export``); heights and widths are
    declared multiples of 64, as every test canvas is, which keeps them symbolic through
    HRNet's stride-32 branches. ``'torchscript'`` is torch's deprecated tracing exporter:
    the same graph and numbers in ~1/10 of the time (the symbolic shape reasoning of
    ``torch.export`` takes minutes for W32 on 2 cores).
    """
    example = (torch.from_numpy(inputs), )
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter('ignore')  # the tracer's and the deprecation's warnings
        trace = _trace_dynamo if exporter == 'dynamo' else _trace_torchscript
        proto = trace(graph, example)
    onnx.helper.set_model_props(proto, settings.to_metadata())
    try:
        onnx.checker.check_model(proto, full_check=True)
    except onnx.checker.ValidationError as error:
        raise DeployError(f'the exported graph fails onnx.checker: {error}') from error
    return proto


def _trace_dynamo(graph: InferenceGraph, example: Tuple[torch.Tensor]) -> onnx.ModelProto:
    batch, height, width = (torch.export.Dim(name, min=1, max=1024)
                            for name in ('batch', 'height_64', 'width_64'))
    program = torch.onnx.export(
        graph,
        example,
        dynamo=True,
        verbose=False,
        input_names=[GRAPH_INPUT],
        output_names=list(GRAPH_OUTPUTS),
        dynamic_shapes={GRAPH_INPUT: {0: batch, 2: 64 * height, 3: 64 * width}})
    return program.model_proto


def _trace_torchscript(graph: InferenceGraph,
                       example: Tuple[torch.Tensor]) -> onnx.ModelProto:
    buffer = io.BytesIO()
    torch.onnx.export(graph,
                      example,
                      buffer,
                      dynamo=False,
                      opset_version=17,
                      input_names=[GRAPH_INPUT],
                      output_names=list(GRAPH_OUTPUTS),
                      dynamic_axes={GRAPH_INPUT: {0: 'batch', 2: 'height', 3: 'width'}})
    return onnx.load_from_string(buffer.getvalue())


def verify(path: Path, graph: InferenceGraph, inputs: np.ndarray,
           nms_kernel: int) -> Dict[str, float]:
    """Run the file in onnxruntime (CPU) on ``inputs`` and compare with the eager graph.

    Heatmaps and tags must be within :data:`TOLERANCE` of the eager outputs (relative to
    their largest value, at least absolute). The peak map must equal the NMS of the file's
    own heatmaps exactly: compared with the eager peak map, it legitimately differs where
    neighbours tie within float rounding (one of two equal values kept or not).

    Returns:
        Dict[str, float]: Largest absolute difference of each output (0 for ``peaks``).

    Raises:
        DeployError: Naming the output that differs and by how much.
    """
    session = ort.InferenceSession(str(path), providers=['CPUExecutionProvider'])
    heatmaps, tags, peaks = session.run(list(GRAPH_OUTPUTS), {GRAPH_INPUT: inputs})
    with torch.no_grad():
        eager = [t.numpy() for t in graph(torch.from_numpy(inputs))]
    differences = {}
    for name, exported, expected in zip(GRAPH_OUTPUTS[:2], (heatmaps, tags), eager[:2]):
        differences[name] = _max_difference(name, exported, expected)
    own_peaks = nms_peaks_numpy(heatmaps, nms_kernel)
    mismatched = int(np.count_nonzero(peaks != own_peaks))
    if mismatched:
        raise DeployError(f"output 'peaks' is not the NMS of the exported heatmaps at "
                          f'{mismatched} pixels (largest difference '
                          f'{float(np.abs(peaks - own_peaks).max()):.3g}); nothing written')
    differences['peaks'] = 0.0
    return differences


def _max_difference(name: str, exported: np.ndarray, expected: np.ndarray) -> float:
    if exported.shape != expected.shape:
        raise DeployError(f'output {name!r} has shape {exported.shape} in onnxruntime, '
                          f'{expected.shape} in the eager model; nothing written')
    difference = float(np.abs(exported.astype(np.float64) - expected).max())
    tolerance = TOLERANCE * max(1.0, float(np.abs(expected).max()))
    if not difference <= tolerance:  # also catches NaN
        raise DeployError(f'output {name!r} differs from the eager model by up to '
                          f'{difference:.3g} (tolerance {tolerance:.3g}); nothing written')
    return difference


def nms_peaks_numpy(heatmaps: np.ndarray, kernel: int) -> np.ndarray:
    """:func:`.inference_graph.nms_peaks` in numpy: (..., H, W) maps, exact."""
    size = (1, ) * (heatmaps.ndim - 2) + (kernel, kernel)
    window_max = maximum_filter(heatmaps, size=size, mode='constant', cval=-np.inf)
    return heatmaps * (window_max == heatmaps)

