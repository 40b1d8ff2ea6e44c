"""The torch-free pre-processing and back-projection equal the eager test pipeline's, bit for
bit: HigherHRNetResize, the data preprocessors, mmpose's canvas -> image mapping."""
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from mmengine.structures import InstanceData
from mmpose.models.pose_estimators import BottomupPoseEstimator
from mmpose.registry import MODELS
from mmpose.structures import PoseDataSample

from higherhrnet_plugin.datasets.transforms import HigherHRNetResize
from higherhrnet_plugin.deploy import DeploySettings, normalize, read_image, to_canvas
from higherhrnet_plugin.deploy.deploy_error import DeployError
from higherhrnet_plugin.structures import canvas_to_image

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from _onnx_models import COCO_IMAGE, OCHUMAN_IMAGE  # noqa: E402

MEAN, STD = (123.675, 116.28, 103.53), (58.395, 57.12, 57.375)


def _settings(**overrides):
    values = dict(input_size=512, num_keypoints=17, flip_test=True,
                  flip_indices=tuple(range(17)), mean=MEAN, std=STD, swap_channels=True)
    return DeploySettings(**{**values, **overrides})


@pytest.mark.parametrize('path, canvas', [(COCO_IMAGE, (832, 512)), (OCHUMAN_IMAGE, (512, 832))])
@pytest.mark.parametrize('rounding', ['official', 'mmpose0x'])
def test_canvas_equals_higher_hrnet_resize(path, canvas, rounding):
    image = read_image(path)
    expected = HigherHRNetResize(512, rounding=rounding).transform(dict(img=image.copy()))
    warped, (size, center, scale) = to_canvas(image, _settings(rounding=rounding))
    assert size == expected['input_size'] == canvas  # landscape and portrait
    np.testing.assert_array_equal(warped, expected['img'])
    np.testing.assert_array_equal(center, expected['input_center'])
    np.testing.assert_array_equal(scale, expected['input_scale'])


@pytest.mark.parametrize('preprocessor, normalization',
                         [('HigherHRNetDataPreprocessor', 'official'),
                          ('PoseDataPreprocessor', 'mmpose')])
def test_normalize_equals_the_data_preprocessor(preprocessor, normalization):
    canvas, _ = to_canvas(read_image(COCO_IMAGE), _settings())
    model_preprocessor = MODELS.build(
        dict(type=preprocessor, mean=list(MEAN), std=list(STD), bgr_to_rgb=True,
             pad_size_divisor=64))
    data = model_preprocessor(dict(inputs=[torch.from_numpy(canvas).permute(2, 0, 1)],
                                   data_samples=[PoseDataSample()]))
    ours = normalize(canvas, _settings(normalization=normalization))
    assert ours.dtype == np.float32 and ours.shape == (1, 3, 512, 832)
    np.testing.assert_array_equal(ours, data['inputs'].numpy())  # bit for bit


def test_canvas_to_image_equals_mmpose_back_projection():
    _, (size, center, scale) = to_canvas(read_image(OCHUMAN_IMAGE), _settings())
    keypoints = np.random.default_rng(0).uniform(0, 512, (3, 17, 2)).astype(np.float32)
    sample = PoseDataSample(metainfo=dict(input_size=size, input_center=center,
                                          input_scale=scale))
    instances = InstanceData(keypoints=keypoints.copy(), keypoint_scores=np.ones((3, 17)))
    # mmpose's method uses no attribute of the estimator.
    BottomupPoseEstimator.add_pred_to_datasample(None, [instances], None, [sample])
    projected = canvas_to_image(keypoints, size, center, scale)
    assert projected.dtype == np.float64
    np.testing.assert_array_equal(projected, sample.pred_instances.keypoints)


def test_read_image_refuses_what_is_not_an_image(tmp_path):
    text = tmp_path / 'notes.jpg'
    text.write_text('not a picture')
    with pytest.raises(DeployError, match='not an image'):
        read_image(text)
    with pytest.raises(DeployError, match='image not found'):
        read_image(tmp_path / 'missing.jpg')
    cv2.imwrite(str(tmp_path / 'ok.png'), np.zeros((4, 6, 3), np.uint8))
    assert read_image(tmp_path / 'ok.png').shape == (4, 6, 3)
