"""Exported graph + torch-free decoding vs the eager model (mmpose's ``inference_bottomup``).

Maps: within 1e-4 on every real image of ../shared/data at its own canvas (fp32, CPU). Final
keypoints: within 1e-3 px, fast and reference grouping. The seeded random weights give 30
persons per image; the comparison holds exactly because no decision is a near-tie at float
rounding level (the maps differ by ~1e-7).
"""
import sys
from pathlib import Path

import numpy as np
import pytest
from scipy.ndimage import maximum_filter

from higherhrnet_plugin.deploy import OnnxPoseEstimator, read_image
from higherhrnet_plugin.deploy.export import export_onnx, nms_peaks_numpy

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from _onnx_models import (COCO_IMAGE, OCHUMAN_IMAGE, TOY_CONFIG, eager_maps,  # noqa: E402
                          eager_model, eager_predict, real_images)

MAP_TOLERANCE = 1e-4
PIXEL_TOLERANCE = 1e-3
pytestmark = pytest.mark.usefixtures('one_torch_thread')


@pytest.fixture(scope='module')
def toy_eager(toy_checkpoint):
    return eager_model(TOY_CONFIG, toy_checkpoint)


def _check_maps(estimator, model, image_path):
    """ONNX maps vs the eager head's (``output_heatmaps``) on the image's own canvas."""
    image = read_image(image_path)
    inputs, (canvas, _, _) = estimator.preprocess(image)
    heatmaps, tags, peaks = (m[0] for m in estimator.run_graph(inputs))
    sample = eager_predict(model, image)
    expected_heatmaps, expected_tags = eager_maps(sample)
    assert tuple(sample.metainfo['input_size']) == canvas == heatmaps.shape[:0:-1]
    np.testing.assert_allclose(heatmaps, expected_heatmaps, rtol=0, atol=MAP_TOLERANCE)
    np.testing.assert_allclose(tags, expected_tags, rtol=0, atol=MAP_TOLERANCE)
    # The peak map is the exact NMS of the exported heatmaps. Its kept pixels may differ
    # from the eager NMS only where a pixel ties its window maximum within float rounding.
    np.testing.assert_array_equal(peaks, nms_peaks_numpy(heatmaps, 5))
    window_max = maximum_filter(expected_heatmaps, size=(1, 5, 5), mode='nearest')
    kept, eager_kept = peaks == heatmaps, window_max == expected_heatmaps
    assert not ((kept != eager_kept) & (window_max - expected_heatmaps > 1e-5)).any()
    return canvas


def _check_persons(estimator, model, image_path):
    """Persons of the ONNX path vs ``inference_bottomup``: same count and order, keypoints
    within 1e-3 px, scores within float rounding."""
    image = read_image(image_path)
    keypoints, keypoint_scores, scores = estimator(image)
    expected = eager_predict(model, image).pred_instances
    assert len(scores) == len(expected.bbox_scores) > 0
    np.testing.assert_allclose(keypoints, expected.keypoints, rtol=0, atol=PIXEL_TOLERANCE)
    np.testing.assert_allclose(keypoint_scores, expected.keypoint_scores, rtol=0, atol=1e-6)
    np.testing.assert_allclose(scores, expected.bbox_scores, rtol=0, atol=1e-6)
    return np.abs(keypoints - expected.keypoints).max()


def test_toy_maps_on_every_real_image(toy_onnx, toy_eager):
    estimator = OnnxPoseEstimator(toy_onnx, threads=1)
    canvases = {_check_maps(estimator, toy_eager, path) for path in real_images()}
    assert len(real_images()) == 9 and len(canvases) >= 4  # landscape and portrait


def test_toy_keypoints_fast_on_every_real_image(toy_onnx, toy_eager):
    estimator = OnnxPoseEstimator(toy_onnx, threads=1)
    assert estimator.settings.decode_mode == 'fast'
    for path in real_images():
        _check_persons(estimator, toy_eager, path)


def test_toy_keypoints_reference(toy_onnx, toy_checkpoint):
    estimator = OnnxPoseEstimator(toy_onnx, threads=1, decode_mode='reference')
    model = eager_model(TOY_CONFIG, toy_checkpoint, decode_mode='reference')
    for path in (COCO_IMAGE, OCHUMAN_IMAGE):
        _check_persons(estimator, model, path)


@pytest.mark.parametrize('decode_mode', ['fast', 'reference'])
def test_w32_one_file_two_canvases(w32_files, decode_mode):
    config, checkpoint, onnx_file = w32_files
    estimator = OnnxPoseEstimator(onnx_file, threads=1, decode_mode=decode_mode)
    model = eager_model(config, checkpoint, decode_mode)
    if decode_mode == 'fast':
        canvases = [_check_maps(estimator, model, p) for p in (COCO_IMAGE, OCHUMAN_IMAGE)]
        assert canvases == [(448, 256), (256, 384)]
    for path in (COCO_IMAGE, OCHUMAN_IMAGE):
        _check_persons(estimator, model, path)


def test_batch_is_dynamic(toy_onnx):
    estimator = OnnxPoseEstimator(toy_onnx, threads=1)
    inputs, _ = estimator.preprocess(read_image(COCO_IMAGE))
    single = estimator.run_graph(inputs)
    batch = estimator.run_graph(np.concatenate([inputs, inputs[:, :, :, ::-1]]))
    for one, two in zip(single, batch):
        assert two.shape == (2, *one.shape[1:])
    np.testing.assert_allclose(batch[0][:1], single[0], rtol=0, atol=1e-5)


def test_metadata_carries_the_config(toy_onnx, toy_eager):
    settings = OnnxPoseEstimator(toy_onnx).settings
    codec = toy_eager.head.decoder
    assert (settings.input_size, settings.num_keypoints, settings.flip_test) == (256, 17, True)
    assert list(settings.flip_indices) == toy_eager.dataset_meta['flip_indices']
    assert settings.keypoint_names[:2] == ('nose', 'left_eye')
    assert (settings.normalization, settings.swap_channels) == ('official', True)
    assert settings.decode_options == dict(
        nms_kernel=5, topk=30, detection_threshold=0.1, tag_threshold=1.0, max_num_people=30,
        adjust=True, refine=True, refine_search='peaks',
        keypoint_order=list(codec.grouping_order(17)))


def test_toy_without_flip(toy_checkpoint, tmp_path):
    out = tmp_path / 'toy_noflip.onnx'
    export_onnx(TOY_CONFIG, toy_checkpoint, out, COCO_IMAGE, flip=False, exporter='torchscript')
    estimator = OnnxPoseEstimator(out, threads=1)
    model = eager_model(TOY_CONFIG, toy_checkpoint)
    model.test_cfg['flip_test'] = False
    for path in (COCO_IMAGE, OCHUMAN_IMAGE):
        _check_maps(estimator, model, path)
        _check_persons(estimator, model, path)
