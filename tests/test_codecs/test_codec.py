"""MultiLevelAssociativeEmbedding as mmpose uses it: arguments, mapping tables, registration,
pipeline packing (GenerateTarget -> PackPoseInputs) and decode forwarding to the parsers."""
import numpy as np
import pytest

from higherhrnet_plugin.codecs import MultiLevelAssociativeEmbedding

from _codec_helpers import INPUT, LEVELS, make_codec


def test_mapping_tables():
    from mmpose.datasets.transforms import PackPoseInputs
    codec = make_codec()
    assert codec.label_mapping_table == dict(keypoint_indices='keypoint_indices',
                                             keypoint_weights='keypoint_weights')
    assert codec.field_mapping_table == dict(heatmaps='heatmaps', heatmap_mask='heatmap_mask')
    # A codec table replaces PackPoseInputs' default: keep the default instance fields.
    assert codec.instance_mapping_table == PackPoseInputs.instance_mapping_table
    assert codec.auxiliary_encode_keys == {'flip', 'flip_direction'}


def test_registered_in_mmpose():
    from mmpose.registry import KEYPOINT_CODECS
    codec = KEYPOINT_CODECS.build(
        dict(type='MultiLevelAssociativeEmbedding',
             input_size=[64, 64],
             heatmap_sizes=[[16, 16], [32, 32]],
             decode_keypoint_order=[1, 0]))
    assert codec.heatmap_sizes == ((16, 16), (32, 32))
    assert codec.decode_keypoint_order == (1, 0)


@pytest.mark.parametrize('kwargs, message', [
    (dict(input_size=(512, )), 'input_size'),
    (dict(input_size=(512, 0)), 'input_size'),
    (dict(input_size=(512.0, 512)), 'input_size'),
    (dict(heatmap_sizes=()), 'heatmap_sizes'),
    (dict(heatmap_sizes=((128, 128), (256, -256))), r'heatmap_sizes\[1\]'),
    (dict(heatmap_sizes='128'), 'heatmap_sizes'),
    (dict(sigma=0), 'sigma'),
    (dict(sigma=float('nan')), 'sigma'),
    (dict(tag_level=2), 'tag_level'),
    (dict(tag_level=-1), 'tag_level'),
    (dict(max_num_people=0), 'max_num_people'),
    (dict(flip_bias='yes'), 'flip_bias'),
    (dict(decode_mode='slow'), 'decode_mode'),
    (dict(decode_nms_kernel=4), 'decode_nms_kernel'),
    (dict(decode_topk=0), 'decode_topk'),
    (dict(decode_tag_thr=0.0), 'decode_tag_thr'),
    (dict(decode_max_instances=0), 'decode_max_instances'),
    (dict(decode_refine=1), 'decode_refine'),
    (dict(decode_keypoint_order=[0, 0, 1]), 'decode_keypoint_order'),
    (dict(decode_keypoint_order=[0, -1]), 'decode_keypoint_order'),
])
def test_bad_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        MultiLevelAssociativeEmbedding(**kwargs)


def test_negative_keypoint_threshold_needs_the_reference_parser():
    # The fast parser only visits pixels above the threshold: it refuses < 0 when built,
    # not at the first decode. The reference parser accepts it, as the official one does.
    with pytest.raises(ValueError, match="decode_keypoint_thr must be >= 0 with decode_mode="):
        MultiLevelAssociativeEmbedding(decode_keypoint_thr=-0.1)
    codec = MultiLevelAssociativeEmbedding(decode_mode='reference', decode_keypoint_thr=-0.1)
    assert codec.decode_keypoint_thr == -0.1


def test_non_finite_maps_are_refused_with_their_name_and_count():
    heatmaps, tags = np.zeros((17, 8, 8), np.float32), np.zeros((17, 8, 8, 2), np.float32)
    heatmaps[3, 2, 2:4] = np.nan
    tags[0, 1, 1, 1] = np.inf
    peak = np.zeros_like(heatmaps)
    peak[0, 1, 1] = 0.9  # a candidate: the fast parser reads its tag
    for mode in ('fast', 'reference'):
        codec = make_codec(decode_mode=mode)
        with pytest.raises(ValueError, match='heatmaps hold 2 non-finite'):
            codec.decode(heatmaps, np.zeros_like(tags))
        with pytest.raises(ValueError, match='tags hold 1 non-finite'):
            codec.decode(peak, tags)


def test_bad_inputs():
    codec = make_codec()
    with pytest.raises(ValueError, match='keypoints'):
        codec.encode(np.zeros((17, 2)))
    with pytest.raises(ValueError, match='flip_direction'):
        codec.encode(np.zeros((1, 17, 2)), flip=True, flip_direction='sideways')


def test_pipeline_packs_multilevel_targets():
    """GenerateTarget -> BottomupGetHeatmapMask -> PackPoseInputs, as in a train pipeline."""
    from mmpose.datasets.transforms import (BottomupGetHeatmapMask, GenerateTarget, PackPoseInputs,
                                            RandomFlip)
    from mmpose.structures import MultilevelPixelData

    keypoints = np.array(
        [[[40.0, 24.0], [8.0, 8.0]], [[50.0, 50.0], [70.0, 10.0]], [[60.0, 30.0], [30.0, 60.0]]],
        dtype=np.float32)
    results = dict(
        img=np.zeros((64, 64, 3), np.uint8),
        img_shape=(64, 64),
        input_size=(64, 64),
        keypoints=keypoints.copy(),
        keypoints_visible=np.array([[1, 1], [1, 1], [0, 0]], np.float32),
        bbox=np.array([[0, 0, 10, 10]] * 3, np.float32),
        flip_indices=[1, 0],
        # An ignored (crowd) region covering the left half of the image. BottomupRandomAffine
        # sets warp_mat; without one, mmpose 1.3.2 tries to cv2.resize a bool mask and fails.
        invalid_segs=[[[0, 0, 32, 0, 32, 64, 0, 64]]],
        warp_mat=np.eye(2, 3, dtype=np.float32))
    pipeline = [
        RandomFlip(prob=0.0),
        GenerateTarget(encoder=dict(
            type='MultiLevelAssociativeEmbedding', input_size=INPUT, heatmap_sizes=LEVELS)),
        BottomupGetHeatmapMask(),
        PackPoseInputs(),
    ]
    for transform in pipeline:
        results = transform(results)
    sample = results['data_samples']

    assert isinstance(sample.gt_fields, MultilevelPixelData)
    assert [tuple(hm.shape) for hm in sample.gt_fields.heatmaps] == [(2, 16, 16), (2, 32, 32)]
    assert sample.gt_fields.heatmaps[0][0, 6, 10] == 1.0
    masks = sample.gt_fields.heatmap_mask
    # MultilevelPixelData keeps each level's mask 2-D, (H_l, W_l); the loss accepts that.
    assert [tuple(m.shape) for m in masks] == [(16, 16), (32, 32)]
    assert not masks[0][:, :7].any() and masks[0][:, 9:].all()
    assert not masks[1][:, :15].any() and masks[1][:, 17:].all()

    labels = sample.gt_instance_labels
    assert tuple(labels.keypoint_indices.shape) == (3, 2, 2)
    assert labels.keypoint_indices[0].tolist() == [[6 * 16 + 10, 1], [256 + 2 * 16 + 2, 1]]
    assert labels.keypoint_indices[1, 1].tolist() == [0, 0]  # x = 70 is off the map
    assert labels.keypoint_weights.tolist() == [[1, 1], [1, 0], [0, 0]]
    assert tuple(sample.gt_instances.keypoints.shape) == (3, 2, 2)
    assert tuple(sample.gt_instances.bboxes.shape) == (3, 4)


def test_pipeline_passes_the_flip_to_the_codec():
    from mmpose.datasets.transforms import GenerateTarget, RandomFlip

    results = dict(img=np.zeros((64, 64, 3), np.uint8),
                   img_shape=(64, 64),
                   input_size=(64, 64),
                   keypoints=np.array([[[23.0, 24.0]]], np.float32),
                   keypoints_visible=np.ones((1, 1)),
                   flip_indices=[0])
    results = RandomFlip(prob=1.0, direction='horizontal')(results)
    assert results['keypoints'][0, 0, 0] == 40.0  # mmpose: 63 - 23
    results = GenerateTarget(encoder=dict(
        type='MultiLevelAssociativeEmbedding', input_size=INPUT, heatmap_sizes=LEVELS))(results)
    # Official: 16 - 1 - 23/4 = 9.25 -> cell 9, and 32 - 1 - 23/2 = 19.5 -> cell 19.
    assert results['heatmaps'][0][0, 6, 9] == 1.0
    assert results['heatmaps'][1][0, 12, 19] == 1.0


class _RecordingParser:
    """Stands in for a parser: records its arguments, returns one fixed instance."""

    def __init__(self):
        self.calls = []

    def __call__(self, heatmaps, tags, **kwargs):
        self.calls.append((heatmaps, tags, kwargs))
        num_keypoints = heatmaps.shape[0]
        keypoints = np.zeros((1, num_keypoints, 2), np.float32)
        return keypoints, np.ones((1, num_keypoints), np.float32), np.ones(1, np.float32)


@pytest.mark.parametrize('mode', ['fast', 'reference'])
def test_decode_forwards_the_decode_arguments(monkeypatch, mode):
    import torch

    from higherhrnet_plugin.codecs import multi_level_associative_embedding as module
    parser = _RecordingParser()
    monkeypatch.setitem(module._PARSERS, mode, parser)
    codec = make_codec(decode_mode=mode,
                       decode_nms_kernel=3,
                       decode_topk=20,
                       decode_keypoint_thr=0.2,
                       decode_tag_thr=0.5,
                       decode_max_instances=12,
                       decode_adjust=False,
                       decode_refine=False,
                       decode_refine_search='full')
    heatmaps = torch.rand(17, 8, 8, requires_grad=True)
    keypoints, keypoint_scores, instance_scores = codec.decode(heatmaps, torch.rand(17, 8, 8, 1))
    assert keypoints.shape == (1, 17, 2) and instance_scores.shape == (1, )
    passed_heatmaps, _, kwargs = parser.calls[0]
    assert not passed_heatmaps.requires_grad
    assert kwargs == dict(
        nms_kernel=3,
        topk=20,
        detection_threshold=0.2,
        tag_threshold=0.5,
        max_num_people=12,
        adjust=False,
        refine=False,
        keypoint_order=(0, 1, 2, 3, 4, 5, 6, 11, 12, 7, 8, 9, 10, 13, 14, 15, 16),
        # The refine search is a fast-parser option: reference always searches the full map.
        **(dict(refine_search='full') if mode == 'fast' else {}))


def test_decode_keypoint_order(monkeypatch):
    from higherhrnet_plugin.codecs import multi_level_associative_embedding as module
    parser = _RecordingParser()
    monkeypatch.setitem(module._PARSERS, 'fast', parser)
    make_codec().decode(np.zeros((14, 4, 4)), np.zeros((14, 4, 4, 1)))  # CrowdPose: K = 14
    # The official parser walks the first K entries of the COCO order (lib/core/group.py).
    assert parser.calls[-1][2]['keypoint_order'] == (0, 1, 2, 3, 4, 5, 6, 11, 12, 7, 8, 9, 10, 13)
    make_codec(decode_keypoint_order=[2, 0, 1]).decode(np.zeros((3, 4, 4)), np.zeros((3, 4, 4, 1)))
    assert parser.calls[-1][2]['keypoint_order'] == (2, 0, 1)
    with pytest.raises(ValueError, match='permutation'):
        make_codec(decode_keypoint_order=[2, 0, 1]).decode(np.zeros((4, 4, 4)),
                                                           np.zeros((4, 4, 4, 1)))


def test_batch_decode_is_per_image(monkeypatch):
    import torch

    from higherhrnet_plugin.codecs import multi_level_associative_embedding as module
    parser = _RecordingParser()
    monkeypatch.setitem(module._PARSERS, 'fast', parser)
    heatmaps, tags = torch.rand(3, 17, 8, 8), torch.rand(3, 17, 8, 8, 2)
    results = make_codec().batch_decode(heatmaps, tags)
    assert len(results) == 3 and all(len(r) == 3 for r in results)
    for b, (passed_heatmaps, passed_tags, _) in enumerate(parser.calls):
        assert torch.equal(passed_heatmaps, heatmaps[b]) and torch.equal(passed_tags, tags[b])
    with pytest.raises(ValueError, match='batch sizes'):
        make_codec().batch_decode(heatmaps, tags[:2])


@pytest.mark.parametrize('mode', ['fast', 'reference'])
def test_encode_decode_round_trip(mode):
    """Perfect heatmaps and tags decode to each keypoint's cell + 0.5 - 0.25.

    The Gaussian is symmetric, so the quarter-pixel adjustment goes to -0.25 on both axes.
    """
    codec = MultiLevelAssociativeEmbedding(input_size=(128, 128),
                                           heatmap_sizes=((32, 32), (64, 64)),
                                           decode_mode=mode)
    keypoints = np.array([[[20, 20], [40, 20], [20, 60]], [[100, 100], [80, 100], [100, 60]]],
                         dtype=np.float32)
    encoded = codec.encode(keypoints, np.ones((2, 3)))
    heatmaps = encoded['heatmaps'][0]
    tags = np.zeros((3, 32, 32, 1), np.float32)
    for person, person_tag in enumerate([0.0, 5.0]):
        for k, (x, y) in enumerate(keypoints[person] / 4):
            tags[k, int(y), int(x)] = person_tag
    decoded, keypoint_scores, instance_scores = codec.decode(heatmaps, tags)
    order = np.argsort(decoded[:, 0, 0])
    np.testing.assert_allclose(decoded[order], keypoints / 4 + 0.25, atol=1e-6)
    np.testing.assert_allclose(keypoint_scores, 1.0, atol=1e-6)
    np.testing.assert_allclose(instance_scores, 1.0, atol=1e-6)
