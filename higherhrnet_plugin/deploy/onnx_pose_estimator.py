"""Run an exported HigherHRNet (tools/export_onnx.py) with onnxruntime, without torch."""
from pathlib import Path
from typing import Optional, Tuple, Union

import numpy as np
import onnxruntime as ort

from ..codecs.utils.grouping_common import ParseResult
from ..structures.canvas_transforms import canvas_to_image
from .decode import decode_maps
from .deploy_error import DeployError
from .deploy_settings import GRAPH_INPUT, GRAPH_OUTPUTS, DeploySettings
from .preprocess import CanvasMeta, normalize, to_canvas


class OnnxPoseEstimator:
    """Image in, persons in image pixels out: pre-processing, the graph, grouping.

    The stages are also public (:meth:`preprocess`, :meth:`run_graph`, :meth:`decode`), so
    they can be timed apart. Everything the stages need is read from the file's metadata
    (:class:`DeploySettings`).

    Note:
        - person number: N
        - keypoint number: K

    Args:
        model_path (str | Path): .onnx file written by ``tools/export_onnx.py``.
        threads (int, optional): onnxruntime intra-op threads; ``None`` for its default.
            Defaults to ``None``.
        decode_mode (str, optional): ``'fast'`` or ``'reference'`` grouping instead of the
            exported model's. Defaults to ``None``.

    Raises:
        DeployError: The file is missing, not an ONNX model, or not an exported HigherHRNet.
    """

    def __init__(self,
                 model_path: Union[str, Path],
                 threads: Optional[int] = None,
                 decode_mode: Optional[str] = None) -> None:
        path = Path(model_path)
        if not path.is_file():
            raise DeployError(f'model file not found: {path}')
        options = ort.SessionOptions()
        if threads is not None:
            options.intra_op_num_threads = threads
        try:
            self.session = ort.InferenceSession(str(path), options,
                                                providers=['CPUExecutionProvider'])
        except Exception as error:  # onnxruntime raises its own (unexported) error types
            raise DeployError(f'{path} is not a readable ONNX model: {error}') from error
        self.settings = DeploySettings.from_metadata(
            self.session.get_modelmeta().custom_metadata_map, str(path))
        if decode_mode is not None:
            self.settings = self.settings.with_decode_mode(decode_mode)
        outputs = tuple(o.name for o in self.session.get_outputs())
        if outputs != GRAPH_OUTPUTS or self.session.get_inputs()[0].name != GRAPH_INPUT:
            raise DeployError(f'{path} has outputs {outputs}; an exported HigherHRNet has '
                              f'{GRAPH_OUTPUTS}')

    def __call__(self, image: np.ndarray) -> ParseResult:
        """Persons of one BGR image.

        Args:
            image (np.ndarray): (h, w, 3) uint8 BGR image.

        Returns:
            tuple:
            - keypoints (np.ndarray): float64 (N, K, 2), image pixels
            - keypoint_scores (np.ndarray): float32 (N, K)
            - scores (np.ndarray): float32 (N, ), person scores
        """
        inputs, meta = self.preprocess(image)
        return self.decode(self.run_graph(inputs), meta)

    def preprocess(self, image: np.ndarray) -> Tuple[np.ndarray, CanvasMeta]:
        """(1, 3, H, W) normalised canvas and its geometry (size, centre, extent)."""
        canvas, meta = to_canvas(image, self.settings)
        return normalize(canvas, self.settings), meta

    def run_graph(self, inputs: np.ndarray) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The graph on (B, 3, H, W) inputs: heatmaps (B, K, H, W), tags (B, K, H, W, L),
        peaks (B, K, H, W)."""
        return tuple(self.session.run(list(GRAPH_OUTPUTS), {GRAPH_INPUT: inputs}))

    def decode(self, maps: Tuple[np.ndarray, np.ndarray, np.ndarray],
               meta: CanvasMeta) -> ParseResult:
        """Group the first image's maps and map the keypoints back to image pixels."""
        heatmaps, tags, peaks = (m[0] for m in maps)
        keypoints, keypoint_scores, scores = decode_maps(heatmaps, tags, peaks, self.settings)
        return canvas_to_image(keypoints, *meta), keypoint_scores, scores
