"""Tests of BottomupHeatmapMask: crowd RLEs and 0-keypoint polygons are masked (official §3.1)."""
import sys
from pathlib import Path

import numpy as np
import pytest
import xtcocotools.mask as cocomask
from mmpose.datasets import CocoDataset
from mmpose.datasets.transforms import BottomupGetHeatmapMask
from mmpose.registry import TRANSFORMS
from xtcocotools.coco import COCO

from higherhrnet_plugin.datasets.transforms.bottomup_heatmap_mask import BottomupHeatmapMask

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from _tools import load_tool  # noqa: E402

REPO = Path(__file__).parents[3]
SHARED_DATA = REPO / '..' / 'shared' / 'data'

# A 6 x 5 (h x w) image; the object covers rows 1..2, columns 1..3.
H, W = 6, 5
RECT = np.zeros((H, W), dtype=bool)
RECT[1:3, 1:4] = True
# Column-major runs: 6 + 1 zeros (column 0, row 0 of column 1), then per column 2 ones and
# 4 zeros (rows 3..5, row 0 of the next column), the last ones followed by 3 + 6 zeros.
RECT_RLE = {'counts': [7, 2, 4, 2, 4, 2, 9], 'size': [H, W]}
# The same rectangle as a polygon: xtcocotools rasterises [1, 4] x [1, 3] (x, y) as the pixels
# of columns 1..3 and rows 1..2.
RECT_POLYGON = [[1.0, 1.0, 4.0, 1.0, 4.0, 3.0, 1.0, 3.0]]


def _results(segs, shape=(H, W), **extra):
    return {
        'img_shape': shape,
        'input_size': (shape[1], shape[0]),
        'invalid_segs': segs,
        **extra
    }


def _ignored(segs, shape=(H, W), **extra) -> np.ndarray:
    """The ignored region (bool, 2-D) our transform computes for ``segs``."""
    return ~BottomupHeatmapMask()(_results(segs, shape, **extra))['heatmap_mask']


def _compressed(mask: np.ndarray, as_bytes: bool = False) -> dict:
    rle = cocomask.encode(np.asfortranarray(mask.astype(np.uint8)))
    counts = rle['counts'] if as_bytes else rle['counts'].decode()
    return {'counts': counts, 'size': list(rle['size'])}


def test_registered():
    assert TRANSFORMS.get('BottomupHeatmapMask') is BottomupHeatmapMask


def test_uncompressed_crowd_rle():
    np.testing.assert_array_equal(_ignored([RECT_RLE]), RECT)


@pytest.mark.parametrize('as_bytes', [False, True])
def test_compressed_crowd_rle(as_bytes):
    rle = _compressed(RECT, as_bytes)
    assert isinstance(rle['counts'], bytes if as_bytes else str)
    np.testing.assert_array_equal(_ignored([rle]), RECT)


def test_polygon_of_person_without_keypoints():
    np.testing.assert_array_equal(_ignored([RECT_POLYGON]), RECT)


def test_union_counts_overlap_once():
    """Official: m = sum of masks, ignored where m >= 0.5, i.e. the union."""
    other = np.zeros((H, W), dtype=bool)
    other[2:5, 0:2] = True  # overlaps RECT at (2, 1)
    ignored = _ignored([RECT_RLE, _compressed(other), RECT_POLYGON])
    np.testing.assert_array_equal(ignored, RECT | other)
    assert ignored.sum() == 6 + 6 - 1


def test_nothing_to_ignore():
    for segs in ([], [None], [[]]):  # None: CrowdPose has no segmentations
        mask = BottomupHeatmapMask()(_results(segs))['heatmap_mask']
        assert mask.shape == (H, W) and mask.all()
    assert BottomupHeatmapMask()({'img_shape': (H, W), 'input_size': (W, H)})['heatmap_mask'].all()


def test_get_invalid():
    mask = BottomupHeatmapMask(get_invalid=True)(_results([RECT_RLE]))['heatmap_mask']
    np.testing.assert_array_equal(mask, RECT)


def test_rle_of_another_size_raises():
    with pytest.raises(ValueError, match='RLE size'):
        _ignored([{'counts': [2, 1, 6], 'size': [3, 3]}])
    with pytest.raises(TypeError):
        _ignored([{'size': [H, W]}])


def test_warp_then_flip():
    """Shift 2 px right (border = ignored), then flip: only the 2 rightmost source columns stay."""
    crowd = np.zeros((8, 8), dtype=bool)
    crowd[:, :4] = True  # left half
    warp_mat = np.array([[1.0, 0.0, 2.0], [0.0, 1.0, 0.0]])
    results = _results([_compressed(crowd)], (8, 8), warp_mat=warp_mat)
    shifted = BottomupHeatmapMask()(dict(results))['heatmap_mask']
    # columns 0..1 come from outside the image, 2..5 from the crowd, 6..7 from columns 4..5
    np.testing.assert_array_equal(shifted[0], [0, 0, 0, 0, 0, 0, 1, 1])
    flipped = BottomupHeatmapMask()(
        dict(results, flip=True, flip_direction='horizontal'))['heatmap_mask']
    np.testing.assert_array_equal(flipped, shifted[:, ::-1])
    np.testing.assert_array_equal(flipped[0], [1, 1, 0, 0, 0, 0, 0, 0])


def test_per_level_resize():
    """Bilinear halving samples source x = 0.5, 2.5, 4.5, 6.5; kept where the value is > 0.5."""
    crowd = np.zeros((8, 8), dtype=bool)
    crowd[:, :5] = True  # columns 0..4: x = 4.5 averages 0 and 1 -> 0.5, not > 0.5
    heatmaps = [np.zeros((17, 4, 4), np.float32), np.zeros((17, 8, 8), np.float32)]
    results = _results([_compressed(crowd)], (8, 8),
                       warp_mat=np.eye(2, 3),
                       heatmaps=heatmaps)
    half, full = BottomupHeatmapMask()(results)['heatmap_mask']
    assert half.shape == (4, 4) and full.shape == (8, 8)
    np.testing.assert_array_equal(half, np.tile([False, False, False, True], (4, 1)))
    np.testing.assert_array_equal(full, ~crowd)


@pytest.fixture(scope='module')
def toy_sample(tmp_path_factory):
    """Image 7 (index 6) of the toy train split with seed 1 holds a crowd and a 0-kpt person."""
    out = tmp_path_factory.mktemp('toy') / 'toy'
    load_tool('make_toy_dataset').make_toy_dataset(out, num_train=7, num_val=1, size=(128, 96), seed=1)
    ann_file = out / 'annotations' / 'person_keypoints_train.json'
    dataset = CocoDataset(ann_file=str(ann_file),
                          data_mode='bottomup',
                          data_prefix=dict(img=str(out / 'images' / 'train')),
                          pipeline=[])
    data_info = dataset.get_data_info(6)
    coco = COCO(str(ann_file))
    anns = coco.loadAnns(coco.getAnnIds(imgIds=data_info['img_id']))
    return data_info, anns, coco


def test_coco_dataset_bottomup_fields(toy_sample):
    """What mmpose's CocoDataset(data_mode='bottomup') gives the transform (documented here)."""
    data_info, anns, _ = toy_sample
    crowd = [a for a in anns if a['iscrowd']]
    no_kpt = [a for a in anns if not a['iscrowd'] and a['num_keypoints'] == 0]
    assert len(crowd) == 1 and len(no_kpt) == 1
    # invalid_segs: crowd (RLE dict, counts a list) and 0-keypoint persons (polygons).
    assert data_info['invalid_segs'] == [a['segmentation'] for a in anns
                                         if a['iscrowd'] or a['num_keypoints'] == 0]
    assert isinstance(crowd[0]['segmentation']['counts'], list)
    # Every annotation, crowd included, stays an instance of `keypoints`; the invalid ones are
    # all-invisible, so they add no heatmap peak and no tag (official drops the crowd objects).
    assert data_info['keypoints'].shape == (len(anns), 17, 2)
    invalid = [i for i, a in enumerate(anns) if a['num_keypoints'] == 0]
    assert not data_info['keypoints_visible'][invalid].any()


def test_toy_crowd_is_masked_and_mmpose_misses_it(toy_sample):
    data_info, anns, coco = toy_sample
    img = coco.loadImgs(data_info['img_id'])[0]
    h, w = img['height'], img['width']
    crowd = coco.annToMask(next(a for a in anns if a['iscrowd'])).astype(bool)
    no_kpt = coco.annToMask(
        next(a for a in anns if not a['iscrowd'] and a['num_keypoints'] == 0)).astype(bool)
    results = _results(data_info['invalid_segs'], (h, w))
    ours = ~BottomupHeatmapMask()(dict(results))['heatmap_mask']
    np.testing.assert_array_equal(ours, crowd | no_kpt)
    # The bug: mmpose's transform keeps only the polygon; the crowd pixels stay supervised.
    theirs = ~BottomupGetHeatmapMask()(dict(results))['heatmap_mask']
    np.testing.assert_array_equal(theirs, no_kpt)
    assert (crowd & ~no_kpt).sum() > 100


def _shared_json(name: str) -> Path:
    path = SHARED_DATA / name
    if not path.exists():
        pytest.skip(f'shared sample data not found: {path}')
    return path


def test_real_coco_polygons_match_mmpose():
    """On COCO's 0-keypoint persons (polygons only) ours and mmpose's agree, and cover them."""
    coco = COCO(str(_shared_json('coco/test_coco.json')))
    anns = [a for a in coco.loadAnns(coco.getAnnIds()) if a['num_keypoints'] == 0]
    assert len(anns) == 2
    for ann in anns:
        img = coco.loadImgs(ann['image_id'])[0]
        results = _results([ann['segmentation']], (img['height'], img['width']))
        ours = ~BottomupHeatmapMask()(dict(results))['heatmap_mask']
        theirs = ~BottomupGetHeatmapMask()(dict(results))['heatmap_mask']
        np.testing.assert_array_equal(ours, theirs)
        np.testing.assert_array_equal(ours, coco.annToMask(ann).astype(bool))
        assert ours.any()


def test_real_compressed_rle():
    """OCHuman stores compressed (str) RLEs: ours rasterises them as xtcocotools does."""
    coco = COCO(str(_shared_json('ochuman/test_ochuman.json')))
    ann = coco.loadAnns(coco.getAnnIds())[0]
    assert isinstance(ann['segmentation']['counts'], str)
    img = coco.loadImgs(ann['image_id'])[0]
    ignored = _ignored([ann['segmentation']], (img['height'], img['width']))
    np.testing.assert_array_equal(ignored, coco.annToMask(ann).astype(bool))
    assert ignored.sum() > 1000
