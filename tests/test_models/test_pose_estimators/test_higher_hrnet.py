import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from mmengine.dataset import pseudo_collate
from mmengine.registry import DefaultScope
from mmpose.datasets.transforms import PackPoseInputs
from mmpose.registry import MODELS

import higherhrnet_plugin  # noqa: F401  (registers the plugin)
from higherhrnet_plugin.datasets.transforms import HigherHRNetResize

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
import _official_layout as official  # noqa: E402

K = 17
MEAN, STD = [123.675, 116.28, 103.53], [58.395, 57.12, 57.375]


@pytest.fixture(autouse=True)
def mmpose_scope():
    """Build from mmpose's registries whatever default scope earlier tests left behind."""
    with DefaultScope.overwrite_default_scope('mmpose'):
        yield


class FixedDecoder:
    """Test double for the codec: one person with every keypoint at canvas (3, 5)."""

    def __init__(self):
        self.heatmap_shapes = []

    def batch_decode(self, heatmaps, tags):
        self.heatmap_shapes.append((tuple(heatmaps.shape), tuple(tags.shape)))
        keypoints = np.tile(np.float32([3, 5]), (1, K, 1))
        return [(keypoints, np.ones((1, K), np.float32), np.float32([0.9]))]


def _model(width=18, **test_cfg):
    model = MODELS.build(
        dict(type='HigherHRNet',
             data_preprocessor=dict(type='PoseDataPreprocessor',
                                    mean=MEAN,
                                    std=STD,
                                    bgr_to_rgb=True,
                                    pad_size_divisor=64),
             backbone=dict(type='HRNetPreset', arch=f'w{width}'),
             head=dict(type='AEHigherResolutionHead',
                       in_channels=width,
                       deconv_out_channels=(width, )),
             test_cfg=dict(flip_test=True, **test_cfg)))
    model.head.decoder = FixedDecoder()
    model.eval()
    return model


def _batch(img, resize):
    results = resize(dict(img=img, flip_indices=list(range(K))))
    packed = PackPoseInputs(meta_keys=('input_size', 'input_center', 'input_scale', 'flip_indices',
                                       'aug_scales', 'aug_imgs'))(results)
    return pseudo_collate([packed]), results


def test_multiscale_pyramid_from_metainfo():
    model = _model(multiscale_test=True)
    img = np.random.default_rng(0).integers(0, 256, (70, 45, 3), dtype=np.uint8)
    data, results = _batch(img, HigherHRNetResize(64, aug_scales=(2, )))
    seen = []
    extract_feat = model.extract_feat
    model.extract_feat = lambda x: seen.append(x) or extract_feat(x)

    with torch.no_grad():
        sample = model.test_step(data)[0]

    # Scale 1 and its flip, then scale 2 and its flip; the scale-2 image normalised as scale 1.
    assert [tuple(x.shape) for x in seen] == [(1, 3, 128, 64)] * 2 + [(1, 3, 256, 128)] * 2
    rgb = torch.from_numpy(results['aug_imgs'][0][..., ::-1].copy()).permute(2, 0, 1).float()
    expected = (rgb - torch.tensor(MEAN)[:, None, None]) / torch.tensor(STD)[:, None, None]
    torch.testing.assert_close(seen[2][0], expected)
    torch.testing.assert_close(seen[3], seen[2].flip(-1))
    # Heatmaps on the scale-1 canvas, tags of scale 1 (original + flipped).
    assert model.head.decoder.heatmap_shapes == [((1, K, 128, 64), (1, K, 128, 64, 2))]
    # Canvas (3, 5) mapped back to the image with the official inverse transform.
    k = 64 / 45
    expected_xy = [(3 - 32) / k + 23, (5 - 64) / k + 35]
    np.testing.assert_allclose(sample.pred_instances.keypoints[0, 0], expected_xy, rtol=1e-5)
    np.testing.assert_allclose(sample.pred_instances.bbox_scores, [0.9])


def test_single_scale_predict_without_pyramid():
    model = _model(multiscale_test=False)
    img = np.zeros((64, 96, 3), np.uint8)
    data, _ = _batch(img, HigherHRNetResize(64))
    with torch.no_grad():
        model.test_step(data)
    assert model.head.decoder.heatmap_shapes == [((1, K, 64, 128), (1, K, 64, 128, 2))]


def _random_tensor(key, shape, generator):
    if key.endswith('num_batches_tracked'):
        return torch.randint(0, 5, shape, generator=generator)
    return torch.randn(shape, generator=generator).half()


def test_official_checkpoint_loads():
    pytest.importorskip('higherhrnet_plugin.models.utils.checkpoint_layout')
    model = _model(width=32)
    generator = torch.Generator().manual_seed(0)
    layout = official.official_layout(32)
    # An FP16-trained official file: '1.' prefix, half-precision weights.
    checkpoint = {
        f'1.{key}': _random_tensor(key, shape, generator)
        for key, shape in layout.items()
    }
    model.load_state_dict(checkpoint, strict=True)
    state = model.state_dict()
    for key in official.split_backbone_head(layout):
        assert state[key].dtype != torch.float16
    torch.testing.assert_close(state['head.deconv_layers.0.0.0.weight'],
                               checkpoint['1.deconv_layers.0.0.0.weight'].float())


def test_plugin_and_mmpose0x_checkpoints_load():
    source, target = _model(), _model()
    state = source.state_dict()
    target.load_state_dict(state, strict=True)  # the layout hook leaves our own keys alone
    torch.testing.assert_close(target.state_dict(), state)
    # mmpose 0.x names the head 'keypoint_head'; mmpose's own hook renames it.
    legacy = {
        k.replace('head.', 'keypoint_head.', 1) if k.startswith('head.') else k: v
        for k, v in state.items()
    }
    _model().load_state_dict(legacy, strict=True)


def test_person_boxes_span_found_keypoints_only():
    """Missing keypoints (score 0, at canvas (0, 0) with ``decode_refine=False``) are not part
    of the box; the old formula stretched every box to the canvas corner."""
    from higherhrnet_plugin.models.pose_estimators.higher_hrnet import keypoint_extent
    keypoints = np.zeros((2, 4, 2), np.float32)
    keypoints[0, :2] = [[10, 20], [30, 25]]  # person 0: keypoints 2 and 3 missing
    keypoints[1] = [[5, 6], [7, 8], [9, 1], [2, 3]]
    scores = np.float32([[0.5, 0.4, 0, 0], [0.1, 0.2, 0.3, 0.4]])
    np.testing.assert_array_equal(keypoint_extent(keypoints, scores),
                                  [[10, 20, 30, 25], [2, 1, 9, 8]])
    # A person without any found keypoint keeps the extent of all of them.
    np.testing.assert_array_equal(keypoint_extent(keypoints[:1], np.zeros((1, 4))),
                                  [[0, 0, 30, 25]])


def test_predicted_boxes_leave_out_missing_keypoints():
    model = _model()

    class HalfFoundDecoder(FixedDecoder):

        def batch_decode(self, heatmaps, tags):
            keypoints = np.zeros((1, K, 2), np.float32)
            keypoints[0, :3] = [[3, 5], [7, 9], [5, 6]]
            scores = np.zeros((1, K), np.float32)
            scores[0, :3] = 0.8
            return [(keypoints, scores, np.float32([0.4]))]

    model.head.decoder = HalfFoundDecoder()
    img = np.zeros((64, 96, 3), np.uint8)
    data, results = _batch(img, HigherHRNetResize(64))
    with torch.no_grad():
        sample = model.test_step(data)[0]
    keypoints = sample.pred_instances.keypoints[0]
    box = sample.pred_instances.bboxes[0]
    np.testing.assert_allclose(box, [*keypoints[:3].min(0), *keypoints[:3].max(0)], rtol=1e-6)
    # Missing keypoints map to the image point of canvas (0, 0), outside the box.
    assert not (box[:2] <= keypoints[5]).all()


def test_multiscale_inputs_are_normalised_officially():
    """Every scale goes through the model's own preprocessor: with
    ``HigherHRNetDataPreprocessor`` the pyramid equals torchvision's ToTensor + Normalize of
    the official resized images, bit for bit (mmpose's (x - mean) / std differs in 1 ulp)."""
    from torchvision import transforms
    model = _model(multiscale_test=True)
    model.data_preprocessor = MODELS.build(
        dict(type='HigherHRNetDataPreprocessor', mean=MEAN, std=STD, bgr_to_rgb=True,
             pad_size_divisor=64))
    img = np.random.default_rng(1).integers(0, 256, (70, 45, 3), dtype=np.uint8)
    data, results = _batch(img, HigherHRNetResize(64, aug_scales=(2, 0.5)))
    seen = []
    extract_feat = model.extract_feat
    model.extract_feat = lambda x: seen.append(x) or extract_feat(x)
    with torch.no_grad():
        model.test_step(data)
    official = transforms.Compose([
        transforms.ToTensor(),
        transforms.Normalize(mean=[0.485, 0.456, 0.406], std=[0.229, 0.224, 0.225])
    ])
    images = [results['img'], *results['aug_imgs']]
    # Inputs seen: scale 1, its flip, scale 2, its flip, scale 0.5, its flip.
    for image, seen_input in zip(images, seen[::2]):
        assert torch.equal(seen_input[0], official(np.ascontiguousarray(image[..., ::-1])))
