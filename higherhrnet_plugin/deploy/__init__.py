"""Torch-free deployment of exported HigherHRNet models (onnxruntime, numpy, scipy, OpenCV).

Export lives in :mod:`.export` (it needs torch); nothing imported here does.
"""
from .decode import decode_maps, parse_reference_from_peaks, topk_candidates
from .deploy_error import DeployError
from .deploy_settings import GRAPH_INPUT, GRAPH_OUTPUTS, METADATA_KEY, DeploySettings
from .onnx_pose_estimator import OnnxPoseEstimator
from .preprocess import normalize, read_image, to_canvas

__all__ = [
    'DeployError', 'DeploySettings', 'GRAPH_INPUT', 'GRAPH_OUTPUTS', 'METADATA_KEY',
    'OnnxPoseEstimator', 'decode_maps', 'normalize', 'parse_reference_from_peaks',
    'read_image', 'to_canvas', 'topk_candidates'
]
