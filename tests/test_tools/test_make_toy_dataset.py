"""Tests of tools/make_toy_dataset.py (the synthetic COCO keypoint dataset)."""
import hashlib
import json
import subprocess
import sys
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import xtcocotools.mask as cocomask
from xtcocotools.coco import COCO

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from _tools import load_tool  # noqa: E402

TOOL = Path(__file__).parents[2] / 'tools' / 'make_toy_dataset.py'
SIZE = (160, 128)  # (w, h): non-square, so a swapped width/height shows up
NUM_TRAIN, NUM_VAL, SEED = 24, 6, 3
# sha256 of person_keypoints_train.json for (NUM_TRAIN, SIZE, SEED). Regenerate it only on a
# deliberate change of the generator (and bump GENERATOR_VERSION).
GOLDEN_TRAIN_SHA256 = '7cd91406b528a4e6500468d901263386392e5b73a177b73fd56fefcc86bfc238'


toy = load_tool('make_toy_dataset')


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _persons(coco: dict, image_id: int) -> list:
    return [a for a in coco['annotations'] if a['image_id'] == image_id]


def _keypoints(ann: dict) -> np.ndarray:
    return np.array(ann['keypoints'], dtype=float).reshape(-1, 3)


@pytest.fixture(scope='module')
def dataset(tmp_path_factory):
    out = tmp_path_factory.mktemp('toy') / 'toy'
    assert toy.make_toy_dataset(out, NUM_TRAIN, NUM_VAL, SIZE, SEED)
    return out


@pytest.fixture(scope='module')
def train(dataset):
    return json.loads((dataset / 'annotations' / 'person_keypoints_train.json').read_text())


@pytest.fixture(scope='module')
def labelled(train):
    """Annotations of persons with keypoints."""
    return [a for a in train['annotations'] if a['num_keypoints'] > 0]


@pytest.mark.parametrize('text, expected', [('256', (256, 256)), ('256x192', (256, 192)),
                                            ('64X4096', (64, 4096))])
def test_parse_size(text, expected):
    assert toy.parse_size(text) == expected


@pytest.mark.parametrize(
    'text', ['', 'abc', '256x', 'x192', '256x192x3', '-256', '63', '256x5000', '25.6'])
def test_parse_size_rejects(text):
    with pytest.raises(ValueError):
        toy.parse_size(text)


def test_layout_and_meta(dataset, train):
    assert sorted(p.name for p in dataset.iterdir()) == ['annotations', 'images', 'meta.json']
    meta = json.loads((dataset / 'meta.json').read_text())
    assert meta == {
        'generator': 'make_toy_dataset',
        'version': toy.GENERATOR_VERSION,
        'num_train': NUM_TRAIN,
        'num_val': NUM_VAL,
        'size': list(SIZE),
        'seed': SEED
    }
    for split, num in (('train', NUM_TRAIN), ('val', NUM_VAL)):
        assert len(list((dataset / 'images' / split).glob('*.jpg'))) == num
    assert [im['id'] for im in train['images']] == list(range(1, NUM_TRAIN + 1))
    assert train['images'][0] == {
        'file_name': '000000000001.jpg',
        'height': SIZE[1],
        'width': SIZE[0],
        'id': 1
    }
    val = json.loads((dataset / 'annotations' / 'person_keypoints_val.json').read_text())
    assert val['images'][0]['id'] == 1_000_001  # ids disjoint from train
    cat = train['categories'][0]
    assert cat['id'] == 1 and cat['keypoints'][5] == 'left_shoulder'
    assert len(cat['skeleton']) == 19 and [16, 14] in cat['skeleton']


def test_images_match_size(dataset):
    import cv2
    img = cv2.imread(str(dataset / 'images' / 'train' / '000000000001.jpg'))
    assert img.shape == (SIZE[1], SIZE[0], 3)


def test_deterministic_for_seed(dataset, tmp_path):
    toy.make_toy_dataset(tmp_path / 'same', NUM_TRAIN, NUM_VAL, SIZE, SEED)
    toy.make_toy_dataset(tmp_path / 'other', NUM_TRAIN, NUM_VAL, SIZE, SEED + 1)
    ann = Path('annotations') / 'person_keypoints_train.json'
    img = Path('images') / 'val' / '000001000003.jpg'
    for rel in (ann, img):
        assert _sha256(dataset / rel) == _sha256(tmp_path / 'same' / rel)
        assert _sha256(dataset / rel) != _sha256(tmp_path / 'other' / rel)
    assert _sha256(dataset / ann) == GOLDEN_TRAIN_SHA256, 'generator output changed'


def test_images_do_not_depend_on_split_length(dataset, tmp_path):
    toy.make_toy_dataset(tmp_path / 'short', 5, 1, SIZE, SEED)
    rel = Path('images') / 'train' / '000000000005.jpg'
    assert _sha256(dataset / rel) == _sha256(tmp_path / 'short' / rel)


def test_persons_per_image(train):
    counts = Counter(a['image_id'] for a in train['annotations']
                     if a['num_keypoints'] > 0 and not a['iscrowd'])
    assert set(counts) == {im['id'] for im in train['images']}
    assert set(counts.values()) <= set(range(1, toy.MAX_PERSONS + 1))
    assert len(set(counts.values())) >= 3  # the count varies


def test_keypoints_inside_image_and_counted(labelled):
    w, h = SIZE
    for ann in labelled:
        kpts = _keypoints(ann)
        labelled_kpts = kpts[kpts[:, 2] > 0]
        assert np.all((labelled_kpts[:, 0] >= 0) & (labelled_kpts[:, 0] < w))
        assert np.all((labelled_kpts[:, 1] >= 0) & (labelled_kpts[:, 1] < h))
        assert np.all(kpts[kpts[:, 2] == 0, :2] == 0)  # COCO stores 0, 0, 0 when unlabelled
        assert set(kpts[:, 2]) <= {0, 1, 2}
        assert ann['num_keypoints'] == np.count_nonzero(kpts[:, 2])


def test_visibility_mix(labelled):
    v = np.concatenate([_keypoints(a)[:, 2] for a in labelled])
    fractions = [np.mean(v == i) for i in range(3)]
    # Mostly visible, but occluded and out-of-image keypoints are common enough to learn from.
    assert fractions[2] > 0.6 and fractions[1] > 0.03 and fractions[0] > 0.02, fractions


@pytest.mark.parametrize('left, right', [(1, 2), (3, 4), (5, 6), (11, 12)])
def test_left_is_on_image_right(labelled, left, right):
    """Frontal, upright figures: the person's left eye/ear/shoulder/hip has the larger x."""
    pairs = [_keypoints(a)[[left, right]] for a in labelled]
    pairs = [p for p in pairs if np.all(p[:, 2] > 0)]
    assert len(pairs) > 10
    assert all(p[0, 0] > p[1, 0] for p in pairs)


@pytest.mark.parametrize('upper, lower', [(1, 0), (5, 11), (6, 12), (11, 13), (12, 14), (13, 15),
                                          (14, 16)])
def test_upright_layout(labelled, upper, lower):
    """Eye above nose, shoulder above hip above knee above ankle."""
    both = [_keypoints(a)[[upper, lower]] for a in labelled]
    both = [p for p in both if np.all(p[:, 2] > 0)]
    assert len(both) > 10
    assert all(p[0, 1] < p[1, 1] for p in both)


def test_flip_indices_swap_left_and_right():
    names = toy.KEYPOINT_NAMES
    for i, j in enumerate(toy.FLIP_INDICES):
        assert names[j] == names[i].replace('left', 'tmp').replace('right',
                                                                   'left').replace('tmp', 'right')


def test_crowd_annotations(train):
    crowd = [a for a in train['annotations'] if a['iscrowd']]
    assert len(crowd) >= 3
    w, h = SIZE
    for ann in crowd:
        seg = ann['segmentation']
        assert seg['size'] == [h, w] and sum(seg['counts']) == w * h
        mask = cocomask.decode(cocomask.frPyObjects(seg, h, w))
        assert mask.sum() == ann['area'] == cocomask.area(cocomask.frPyObjects(seg, h, w))
        ys, xs = np.nonzero(mask)
        assert ann['bbox'] == [
            xs.min(), ys.min(),
            xs.max() - xs.min() + 1,
            ys.max() - ys.min() + 1
        ]
        assert ann['num_keypoints'] == 0 and not any(ann['keypoints'])


def test_tiny_persons_without_keypoints(train):
    tiny = [a for a in train['annotations'] if not a['iscrowd'] and a['num_keypoints'] == 0]
    assert len(tiny) >= 3
    for ann in tiny:
        assert len(ann['keypoints']) == 51 and not any(ann['keypoints'])
        polygon = np.array(ann['segmentation'][0]).reshape(-1, 2)
        assert len(polygon) >= 3
        assert ann['bbox'][3] <= 0.1 * SIZE[1] + 2


def test_polygon_area_and_bbox(train):
    w, h = SIZE
    for ann in (a for a in train['annotations'] if not a['iscrowd']):
        mask = cocomask.decode(cocomask.merge(cocomask.frPyObjects(ann['segmentation'], h, w)))
        polygon = np.array(ann['segmentation'][0]).reshape(-1, 2)
        perimeter = np.linalg.norm(polygon - np.roll(polygon, 1, axis=0), axis=1).sum()
        # Rasterising the hull gives its exact area up to part of the boundary pixels.
        assert abs(int(mask.sum()) - ann['area']) <= 0.25 * perimeter
        x, y, bw, bh = ann['bbox']
        assert polygon[:, 0].min() == x and polygon[:, 1].min() == y
        assert polygon[:, 0].max() == x + bw - 1 and polygon[:, 1].max() == y + bh - 1


def test_loads_with_xtcocotools(dataset, train):
    coco = COCO(str(dataset / 'annotations' / 'person_keypoints_train.json'))
    assert coco.getImgIds() == list(range(1, NUM_TRAIN + 1))
    assert coco.getCatIds() == [1]
    ann_ids = coco.getAnnIds(imgIds=[1])
    assert len(ann_ids) == len(_persons(train, 1))
    crowd = coco.loadAnns(coco.getAnnIds(iscrowd=True))
    assert crowd and all(coco.annToMask(a).sum() == a['area'] for a in crowd)


def test_labels_sit_on_their_parts():
    """A visible (v=2) nose/eye/wrist/ankle lies on a pixel of its part's colour."""
    parts = {0: 'nose', 1: 'eye', 2: 'eye', 9: 'hand', 10: 'hand', 15: 'foot', 16: 'foot'}
    hits, total = 0, 0
    for index in range(20):
        img, anns = toy.generate_image(toy.image_rng(0, 'train', index), (256, 256))
        for ann in (a for a in anns if a['num_keypoints'] > 0):
            kpts = _keypoints(ann).astype(int)
            for k, part in parts.items():
                if kpts[k, 2] == 2:
                    diff = np.abs(img[kpts[k, 1], kpts[k, 0]].astype(int) - toy.PARTS[part][0])
                    hits += int(diff.max() <= toy.COLOUR_JITTER)
                    total += 1
    # Possible misses: an arm of the same figure drawn over its face or other hand.
    assert total > 300 and hits / total > 0.95, (hits, total)


def test_keypoint_visibility_hand_computed():
    kpts = np.zeros((17, 2))
    kpts[:, 0] = np.arange(17)  # keypoint k at (k, 0); keypoint 16 at x=16 is outside w=16
    fig = toy.Figure(kpts, np.zeros(2), 10.0)
    label_map = np.full((4, 16), 3, dtype=np.uint8)
    label_map[0, 4:7] = 255  # an occluder over keypoints 4, 5, 6
    label_map[0, 9] = 1  # another figure over keypoint 9
    expected = [2] * 17
    expected[4] = expected[5] = expected[6] = expected[9] = 1
    expected[16] = 0
    assert toy.keypoint_visibility(fig, 3, label_map).tolist() == expected


@pytest.mark.parametrize('mask, counts', [
    ([[0, 1], [1, 1]], [1, 3]),
    ([[1, 0], [0, 0]], [0, 1, 3]),
    ([[0, 0, 1], [0, 1, 1]], [3, 3]),
    ([[1, 1], [1, 1]], [0, 4]),
])
def test_mask_to_rle(mask, counts):
    mask = np.array(mask, dtype=np.uint8)
    rle = toy.mask_to_rle(mask)
    assert rle == {'counts': counts, 'size': list(mask.shape)}
    decoded = cocomask.decode(cocomask.frPyObjects(rle, *mask.shape))
    np.testing.assert_array_equal(decoded, mask)


def test_rerun_is_skipped_and_other_args_refused(tmp_path):
    out = tmp_path / 'toy'
    assert toy.make_toy_dataset(out, 2, 1, (64, 64), 0)
    stamp = (out / 'meta.json').stat().st_mtime_ns
    assert not toy.make_toy_dataset(out, 2, 1, (64, 64), 0)
    assert (out / 'meta.json').stat().st_mtime_ns == stamp
    with pytest.raises(FileExistsError, match='--force'):
        toy.make_toy_dataset(out, 3, 1, (64, 64), 0)
    assert toy.make_toy_dataset(out, 3, 1, (64, 64), 0, force=True)
    assert len(list((out / 'images' / 'train').iterdir())) == 3
    assert sorted(p.name for p in tmp_path.iterdir()) == ['toy']  # no temporary folders left


def test_interrupted_run_leaves_nothing(tmp_path, monkeypatch):

    def fail(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(toy, 'generate_split', fail)
    with pytest.raises(KeyboardInterrupt):
        toy.make_toy_dataset(tmp_path / 'toy', 2, 1, (64, 64), 0)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize('kwargs', [dict(num_train=0), dict(num_val=0), dict(seed=-1)])
def test_bad_arguments(tmp_path, kwargs):
    with pytest.raises(ValueError):
        toy.make_toy_dataset(tmp_path / 'toy', **{'size': (64, 64), **kwargs})


def test_cli(tmp_path):
    run = lambda *args: subprocess.run(  # noqa: E731
        [sys.executable, str(TOOL), '--out',
         str(tmp_path / 'toy'), *args],
        capture_output=True,
        text=True)
    bad = run('--size', '256x')
    assert bad.returncode == 2 and 'WxH' in bad.stderr
    ok = run('--num-train', '2', '--num-val', '1', '--size', '96x64', '--seed', '5')
    assert ok.returncode == 0, ok.stderr
    assert json.loads((tmp_path / 'toy' / 'meta.json').read_text())['size'] == [96, 64]
    again = run('--num-train', '2', '--num-val', '1', '--size', '96x64', '--seed', '5')
    assert again.returncode == 0 and 'skipped' in again.stdout


def test_loads_with_mmpose_bottomup(dataset, train):
    pytest.importorskip('mmpose.datasets')
    from mmpose.datasets import CocoDataset
    from mmpose.utils import register_all_modules
    register_all_modules()  # LoadImage is looked up in the mmpose scope
    ds = CocoDataset(ann_file='annotations/person_keypoints_train.json',
                     data_root=str(dataset),
                     data_prefix=dict(img='images/train/'),
                     data_mode='bottomup',
                     pipeline=[dict(type='LoadImage')])
    assert len(ds) == NUM_TRAIN
    assert ds.metainfo['flip_indices'] == list(toy.FLIP_INDICES)
    for index in range(len(ds)):
        info = ds.get_data_info(index)
        anns = _persons(train, info['img_id'])
        valid = [a for a in anns if a['num_keypoints'] > 0 and not a['iscrowd']]
        assert info['keypoints'].shape == (len(anns), 17, 2)
        assert len(info['invalid_segs']) == len(anns) - len(valid)
        assert Path(info['img_path']).is_file()
    assert ds[0]['img'].shape == (SIZE[1], SIZE[0], 3)
