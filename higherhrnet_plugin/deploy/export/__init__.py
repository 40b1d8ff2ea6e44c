"""ONNX export of HigherHRNet (needs torch, onnx and onnxruntime)."""
from .onnx_export import (EXPORTERS, deploy_settings, export_graph, export_onnx, load_model,
                          nms_peaks_numpy, verify)
from .test_time_graph import TestTimeGraph, nms_peaks

__all__ = [
    'EXPORTERS', 'TestTimeGraph', 'deploy_settings', 'export_graph',
    'export_onnx', 'load_model', 'nms_peaks', 'nms_peaks_numpy', 'verify'
]
