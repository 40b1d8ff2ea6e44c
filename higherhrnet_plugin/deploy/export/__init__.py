"""ONNX export of HigherHRNet (needs torch, onnx and onnxruntime)."""
from .onnx_export import (EXPORTERS, deploy_settings, export_graph, export_onnx, load_model,
                          nms_peaks_numpy, verify)
from .inference_graph import InferenceGraph, nms_peaks

__all__ = [
    'EXPORTERS', 'InferenceGraph', 'deploy_settings', 'export_graph',
    'export_onnx', 'load_model', 'nms_peaks', 'nms_peaks_numpy', 'verify'
]
