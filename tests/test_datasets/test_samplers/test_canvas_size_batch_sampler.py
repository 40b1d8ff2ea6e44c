"""CanvasSizeBatchSampler: buckets, order, length, drop_last, ranks; batched test == batch 1.

Canvases at input 512 (official rounding, ``W' = (512 / short * long + 63) // 64 * 64``):

    640 x 480 -> 512/480*640 = 682.7 -> (704, 512)      480 x 640 -> (512, 704)
    500 x 333 -> 512/333*500 = 768.8 -> (768, 512)      640 x 429 -> 763.8 -> (768, 512)
    640 x 425 -> 512/425*640 = 771.0 -> (832, 512)      EXIF-rotated 640 x 425 -> (512, 832)

The shared COCO images at input 256: 640x425 -> 385.5 -> (448, 256), 640x392 -> 418.0 ->
(448, 256), 500x333 -> 384.4 -> (384, 256), 640x429 -> 381.9 -> (384, 256).
"""
import copy
import json
import sys
from pathlib import Path
from typing import Dict, List

import cv2
import mmengine.dataset.sampler as mmengine_sampler
import numpy as np
import pytest
import torch
from mmcv import imread
from mmengine.config import Config
from mmengine.dataset import Compose, DefaultSampler
from mmengine.runner import Runner
from mmpose.registry import MODELS
from PIL import Image
from torch.utils.data import SequentialSampler

import higherhrnet_plugin  # noqa: F401  (registers the plugin)
from higherhrnet_plugin.datasets import (CanvasSizeBatchSampler, HigherHRNetResize,
                                         ReliableDataset)
from higherhrnet_plugin.datasets.samplers.canvas_size_batch_sampler import read_image_size

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from _data import CONFIG_DIR, SHARED_DATA, cpu_overrides, dataset_key  # noqa: E402

# name: (w, h, EXIF orientation) of the files; canvas at input 512 as decoded.
IMAGES = {
    'a.png': (640, 480, None),  # (704, 512)
    'b.png': (500, 333, None),  # (768, 512)
    'c.png': (640, 429, None),  # (768, 512), same canvas as b
    'd.png': (480, 640, None),  # (512, 704)
    'e.jpg': (640, 425, 6),  # decoded 425 x 640 -> (512, 832)
}
CANVASES = {
    'a.png': (704, 512),
    'b.png': (768, 512),
    'c.png': (768, 512),
    'd.png': (512, 704),
    'e.jpg': (512, 832)
}
# Dataset order: canvases A B A B' D A B E A B' A (B' = c.png, same canvas as b.png).
ORDER = [
    'a.png', 'b.png', 'a.png', 'c.png', 'd.png', 'a.png', 'b.png', 'e.jpg', 'a.png', 'c.png',
    'a.png'
]


class FakeDataset:
    """The parts of an mmengine dataset the sampler reads: len, get_data_info, pipeline."""

    def __init__(self, paths: List[str], pipeline: List[dict]) -> None:
        self.paths = paths
        self.pipeline = Compose(pipeline)

    def __len__(self) -> int:
        return len(self.paths)

    def get_data_info(self, index: int) -> Dict:
        return dict(img_path=self.paths[index], img_id=index)


@pytest.fixture(scope='module')
def image_dir(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp('sizes')
    for name, (w, h, orientation) in IMAGES.items():
        image = Image.fromarray(np.zeros((h, w, 3), np.uint8))
        exif = Image.Exif()
        if orientation:
            exif[0x0112] = orientation
        image.save(root / name, exif=exif.tobytes())
    return root


@pytest.fixture
def dataset(image_dir) -> FakeDataset:
    return FakeDataset([str(image_dir / name) for name in ORDER],
                       [dict(type='HigherHRNetResize', input_size=512)])


def make_sampler(dataset, batch_size: int, **kwargs) -> CanvasSizeBatchSampler:
    return CanvasSizeBatchSampler(DefaultSampler(dataset, shuffle=False, seed=0), batch_size,
                                  **kwargs)


def test_canvases_from_image_headers(dataset, image_dir):
    sampler = make_sampler(dataset, 2)
    assert [sampler.canvas(i) for i in range(len(ORDER))] == [CANVASES[n] for n in ORDER]
    # The header size is the decoded size (mmcv applies the EXIF rotation).
    for name in IMAGES:
        h, w = imread(str(image_dir / name)).shape[:2]
        assert read_image_size(str(image_dir / name)) == (w, h)
    assert read_image_size(str(image_dir / 'e.jpg')) == (425, 640)


@pytest.mark.parametrize(
    'batch_size, drop_last, expected',
    [
        # Full buckets as they fill, then leftovers in the order their bucket opened.
        (2, False, [[0, 2], [1, 3], [5, 8], [6, 9], [4], [7], [10]]),
        (2, True, [[0, 2], [1, 3], [5, 8], [6, 9]]),
        (3, False, [[0, 2, 5], [1, 3, 6], [4], [7], [8, 10], [9]]),
        (3, True, [[0, 2, 5], [1, 3, 6]]),
        (1, False, [[i] for i in range(11)]),
        (20, False, [[0, 2, 5, 8, 10], [1, 3, 6, 9], [4], [7]]),
    ])
def test_batches_order_and_len(dataset, batch_size, drop_last, expected):
    sampler = make_sampler(dataset, batch_size, drop_last=drop_last)
    assert list(sampler) == expected
    assert list(sampler) == expected  # a second pass starts from empty buckets
    assert len(sampler) == len(expected)


def test_batch_size_one_reads_nothing(tmp_path):
    missing = FakeDataset([str(tmp_path / f'{i}.jpg') for i in range(3)],
                          [dict(type='HigherHRNetResize')])
    sampler = make_sampler(missing, 1)
    assert list(sampler) == [[0], [1], [2]] and len(sampler) == 3
    with pytest.raises(FileNotFoundError):
        make_sampler(missing, 2).canvas(0)


def test_shuffled_every_index_once_one_canvas_per_batch(dataset):
    for epoch in range(3):
        sampler = DefaultSampler(dataset, shuffle=True, seed=0)
        sampler.set_epoch(epoch)
        batch_sampler = CanvasSizeBatchSampler(sampler, 3)
        batches = list(batch_sampler)
        assert sorted(i for b in batches for i in b) == list(range(len(ORDER)))
        assert all(len({CANVASES[ORDER[i]] for i in b}) == 1 for b in batches)
        assert len(batches) == len(batch_sampler) == 6  # A: 5 -> 2, B: 4 -> 2, D, E


def test_wraps_per_rank_samplers(dataset, monkeypatch):
    """Two ranks: each groups its own DefaultSampler's indices; together every index once."""
    per_rank = []
    for rank in range(2):
        monkeypatch.setattr(mmengine_sampler, 'get_dist_info', lambda r=rank: (r, 2))
        sampler = DefaultSampler(dataset, shuffle=False, round_up=False, seed=0)
        batches = list(CanvasSizeBatchSampler(sampler, 2))
        assert sorted(i for b in batches for i in b) == list(range(rank, len(ORDER), 2))
        per_rank.append(batches)
    # rank 0: 0 2 4 6 8 10 = A A D B A A; rank 1: 1 3 5 7 9 = B B' A E B'
    assert per_rank == [[[0, 2], [8, 10], [4], [6]], [[1, 3], [5], [7], [9]]]


def test_resize_from_argument_and_errors(dataset, image_dir):
    # A plain torch sampler and an explicit resize (here: another input size) work too.
    no_resize = FakeDataset(dataset.paths, [])
    sampler = CanvasSizeBatchSampler(SequentialSampler(no_resize),
                                     2,
                                     resize=dict(type='HigherHRNetResize', input_size=256))
    assert sampler.canvas(0) == (384, 256)  # 256/480*640 = 341.3 -> 384
    with pytest.raises(ValueError, match='no HigherHRNetResize'):
        CanvasSizeBatchSampler(SequentialSampler(no_resize), 2)
    with pytest.raises(ValueError, match='differs'):
        make_sampler(dataset, 2, resize=dict(input_size=640))
    # Multi-scale: the scale-1 canvas is aligned at the smallest scale (multiple of 128).
    multi = FakeDataset(dataset.paths,
                        [dict(type='HigherHRNetResize', input_size=512, aug_scales=(2, 0.5))])
    assert make_sampler(multi, 2).canvas(0) == (768, 512)  # 256/480*640 -> 384, x2


def test_sees_through_reliable_dataset(image_dir, tmp_path):
    """The shipped configs' test set: a ``ReliableDataset`` whose pipeline (on the wrapper)
    holds the resize and whose indices are those of the images it kept (one is missing)."""
    names = [*ORDER[:4], 'missing.png', *ORDER[4:]]
    images = [dict(id=i, file_name=name, width=1, height=1) for i, name in enumerate(names)]
    ann_file = tmp_path / 'ann.json'
    ann_file.write_text(json.dumps(dict(images=images, annotations=[], categories=[
        dict(id=1, name='person')])))
    dataset = ReliableDataset(
        dict(type='CocoDataset', ann_file=str(ann_file), data_mode='bottomup', test_mode=True,
             data_prefix=dict(img=str(image_dir))),
        pipeline=[dict(type='CheckedLoadImage'), dict(type='HigherHRNetResize', input_size=512)])
    assert [Path(p).name for p, _ in dataset.bad_images] == ['missing.png']
    sampler = make_sampler(dataset, 2)
    assert sampler.resize is dataset.pipeline.transforms[1]
    assert [sampler.canvas(i) for i in range(len(ORDER))] == [CANVASES[n] for n in ORDER]
    assert list(sampler) == [[0, 2], [1, 3], [5, 8], [6, 9], [4], [7], [10]]


def test_canvas_size_equals_transform(image_dir):
    resize = HigherHRNetResize(512, aug_scales=(0.5, ))
    for name, (w, h, _) in IMAGES.items():
        results = resize(dict(img=np.zeros((h, w, 3), np.uint8)))
        assert resize.canvas_size(w, h) == results['input_size']


# ----------------------------------------------------------------------------------------
# End to end: the toy config's model (random weights, input 256, flip test: the COCO configs'
# head, codec and test path with a small HRNet, for CPU time) on the shared COCO images,
# batch 1 vs batch 4 with the sampler, through mmengine's Runner.build_dataloader.

# Batch 4 vs batch 1: float rounding of the convolutions, relative to the largest value.
MAP_TOLERANCE = 1e-4
EXTRA_COPIES = [  # (source, flip code of cv2.flip, new id)
    ('000000000785.jpg', 1, 1), ('000000040083.jpg', 1, 2), ('000000196141.jpg', 1, 3),
    ('000000197388.jpg', 1, 4), ('000000000785.jpg', 0, 5), ('000000040083.jpg', 0, 6)
]


def coco_with_copies(dst: Path) -> Path:
    """The 4 shared COCO images plus 6 flipped copies (same canvases, other pixels)."""
    src = SHARED_DATA / 'coco'
    ann = json.loads((src / 'test_coco.json').read_text())
    (dst / 'val2017').mkdir(parents=True)
    (dst / 'annotations').mkdir()
    for image in sorted(src.glob('*.jpg')):
        (dst / 'val2017' / image.name).symlink_to(image.resolve())
    by_name = {info['file_name']: info for info in ann['images']}
    for name, flip, new_id in EXTRA_COPIES:
        file_name = f'copy_{new_id}.png'
        cv2.imwrite(str(dst / 'val2017' / file_name), cv2.flip(cv2.imread(str(src / name)), flip))
        ann['images'].append(dict(copy.deepcopy(by_name[name]), id=new_id, file_name=file_name))
    (dst / 'annotations' / 'person_keypoints_val2017.json').write_text(json.dumps(ann))
    return dst


def predict_all(model, cfg: Config, batch_size: int, by_canvas: bool = True) -> Dict:
    """{img_id: (heatmaps (K, H, W), tags (L*K, H, W))} and the canvases of each batch."""
    loader_cfg = copy.deepcopy(cfg.val_dataloader)
    loader_cfg.update(batch_size=batch_size)
    if not by_canvas:
        loader_cfg.pop('batch_sampler')
    loader = Runner.build_dataloader(loader_cfg)
    predictions, batch_canvases = {}, []
    with torch.no_grad():
        for data in loader:
            batch_canvases.append([tuple(d.metainfo['input_size']) for d in data['data_samples']])
            for sample in model.test_step(data):
                fields = sample.pred_fields
                predictions[sample.metainfo['img_id']] = (fields.heatmaps.numpy(),
                                                          fields.tags.numpy())
    return predictions, batch_canvases


@pytest.fixture
def one_thread():
    """One intra-op thread: 2 spinning OpenMP threads on a busy 2-core machine crawl."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def test_batched_test_equals_batch_one(tmp_path, one_thread):
    """Batched maps equal batch-1 maps up to the float rounding of the convolution kernels.

    Keypoints are not compared: the CPU kernels chosen for batch 4 and batch 1 may differ in
    the last bits (machine dependent), and with random weights near-ties in grouping would
    turn those bits into different persons. Decoding is deterministic given the maps.
    """
    data_root = coco_with_copies(tmp_path / 'coco')
    cfg = Config.fromfile(str(CONFIG_DIR / 'toy' / 'higherhrnet_toy_synthetic.py'))
    dataset = dataset_key(cfg, 'val_dataloader')  # the CocoDataset inside ReliableDataset
    cfg.merge_from_dict({
        **cpu_overrides(),
        f'{dataset}.data_root': str(data_root),
        f'{dataset}.ann_file': 'annotations/person_keypoints_val2017.json',
        f'{dataset}.data_prefix.img': 'val2017/',
        'model.test_cfg.output_heatmaps': True,
    })
    assert cfg.val_dataloader.batch_sampler.type == 'CanvasSizeBatchSampler'
    torch.manual_seed(0)
    model = MODELS.build(cfg.model)
    model.init_weights()
    model.eval()

    single, single_canvases = predict_all(model, cfg, 1)
    batched, batched_canvases = predict_all(model, cfg, 4)

    assert len(single_canvases) == 10
    # Dataset order 785 40083 196141 197388 copies 1-6: (448, 256) x5 and (384, 256) x5.
    assert sorted(map(len, batched_canvases)) == [1, 1, 4, 4]
    assert all(len(set(canvases)) == 1 for canvases in batched_canvases)
    assert sorted(single) == sorted(batched) and len(single) == 10
    for img_id, (heatmaps, tags) in single.items():
        for batched_map, single_map in zip(batched[img_id], (heatmaps, tags)):
            assert batched_map.shape == single_map.shape, img_id
            np.testing.assert_allclose(batched_map, single_map, rtol=0,
                                       atol=MAP_TOLERANCE * np.abs(single_map).max())

    # Without the sampler the first batch mixes (448, 256) and (384, 256): padding shows.
    mixed, mixed_canvases = predict_all(model, cfg, 4, by_canvas=False)
    assert len(set(mixed_canvases[0])) == 2
    assert any(
        np.abs(mixed[i][0] - single[i][0]).max() > 100 * MAP_TOLERANCE * np.abs(single[i][0]).max()
        for i in single)
