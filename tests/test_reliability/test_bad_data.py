"""Bad and unusual data through the mmengine Runner (training, validation, test).

Every test adds its inputs to a small toy dataset (``_bad_data.py``) and runs the tiny toy
config (``_tiny.py``: ``ReliableDataset``, ``CheckedLoadImage``, the default runtime's hooks)
with ``Runner.from_cfg(cfg).train()`` / ``.test()``, as ``mim train`` / ``mim test`` do.
"""
import json
import math
import re
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from mmengine.runner import Runner

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from _bad_data import (BAD_FILES, ODD_FORMATS, add_image, crowd, keep_only,  # noqa: E402
                       outside_person, person)
from _tiny_toy import make_data, tiny_config  # noqa: E402

from higherhrnet_plugin.datasets.transforms import CheckedLoadImage  # noqa: E402

pytestmark = pytest.mark.usefixtures('one_torch_thread')
SIZE = (128, 128)
LOSS_LINE = re.compile(r'Epoch\(train\) \[\d+\]\[\d+/\d+\].*')


def _jpeg() -> bytes:
    return cv2.imencode('.jpg', np.full((SIZE[1], SIZE[0], 3), 90, np.uint8))[1].tobytes()


def log_of(runner: Runner) -> str:
    return (Path(runner.log_dir) / f'{runner.timestamp}.log').read_text()


def losses(log: str) -> list:
    """Every ``name: value`` of the training log lines whose name starts with ``loss``."""
    return [(k, float(v)) for line in LOSS_LINE.findall(log)
            for k, v in re.findall(r'(loss\w*): (\S+)', line)]


@pytest.fixture(scope='module')
def bad_root(tmp_path_factory) -> Path:
    """4 + 2 good toy images plus every kind of bad file, in training and validation."""
    root = make_data(tmp_path_factory.mktemp('bad'), num_train=4, num_val=2)
    for split in ('train', 'val'):
        for name, (data, _) in BAD_FILES.items():
            add_image(root, split, name, data, SIZE, [person(SIZE)])
    return root


def test_bad_images_are_skipped_and_counted(bad_root, tmp_path):
    runner = Runner.from_cfg(tiny_config(bad_root, tmp_path, max_epochs=1, max_skipped=10))
    runner.train()
    log = log_of(runner)
    for split, stage in (('train', 'training'), ('val', 'validation')):
        for name, (_, reason) in BAD_FILES.items():
            path = bad_root / 'images' / split / name
            assert re.search(rf'skipped image {re.escape(str(path))} in {stage}: {reason}', log)
    assert '10 skipped so far, limit 10' in log
    assert 'Epoch(train) [1][5/5]' in log  # 9 samples, batch 2: the epoch ran to its end
    assert all(math.isfinite(v) for _, v in losses(log))
    assert 'coco/AP' in log  # validation of the 2 good images
    assert len(runner.val_dataloader.dataset) == 2


def test_too_many_bad_images_stop_the_run_with_the_list(bad_root, tmp_path):
    runner = Runner.from_cfg(tiny_config(bad_root, tmp_path, max_epochs=1, max_skipped=2))
    with pytest.raises(RuntimeError, match='more than max_skipped=2') as error:
        runner.train()
    listed = str(error.value).splitlines()[1:]
    assert len(listed) >= 3 and all(any(n in line for n in BAD_FILES) for line in listed)


def test_bad_images_are_skipped_in_test(bad_root, tmp_path):
    runner = Runner.from_cfg(tiny_config(bad_root, tmp_path, max_skipped=10))
    metrics = runner.test()
    assert 'coco/AP' in metrics
    log = log_of(runner)
    for name, (_, reason) in BAD_FILES.items():
        assert f'{bad_root / "images" / "val" / name} in test: {reason}' in log
    assert 'Epoch(test) [2/2]' in log  # only the 2 good images went through the model


@pytest.mark.parametrize('name', list(ODD_FORMATS))
def test_odd_formats_load_as_3_channel_8_bit(name, tmp_path):
    size, make = ODD_FORMATS[name]
    path = tmp_path / name
    path.write_bytes(make())
    image = CheckedLoadImage().transform(dict(img_path=str(path)))['img']
    assert image.shape == (size[1], size[0], 3) and image.dtype == np.uint8
    if name == 'sixteen_bit.png':  # the high byte: 65535 -> 255 at the right edge
        assert image[0, -1, 0] == 255 and image[0, 0, 0] == 0


@pytest.fixture(scope='module')
def odd_root(tmp_path_factory) -> Path:
    """Only unusual images: grayscale, RGBA, 16-bit, 1x1, 8000x6000, a crowd region alone,
    keypoints outside the image, no person at all."""
    root = make_data(tmp_path_factory.mktemp('odd'), num_train=1, num_val=1)
    for split in ('train', 'val'):
        keep_only(root, split, [])
        for name, (size, make) in ODD_FORMATS.items():
            add_image(root, split, name, make(), size, [person(size)])
        add_image(root, split, 'crowd_only.jpg', _jpeg(), SIZE, [crowd(SIZE)])
        add_image(root, split, 'outside.jpg', _jpeg(), SIZE, [outside_person(SIZE)])
        add_image(root, split, 'no_person.jpg', _jpeg(), SIZE, [])
    return root


def test_unusual_images_train_and_test(odd_root, tmp_path):
    runner = Runner.from_cfg(tiny_config(odd_root, tmp_path, max_epochs=1))
    runner.train()
    metrics = runner.test()
    log = log_of(runner)
    assert 'skipped image' not in log
    # Training: the image without any person is left out (mmpose and the official code do).
    assert len(runner.train_dataloader.dataset) == 7
    assert 'Epoch(train) [1][4/4]' in log
    assert losses(log) and all(math.isfinite(v) for _, v in losses(log))
    weights = runner.model.state_dict().values()
    assert all(torch.isfinite(w).all() for w in weights if w.is_floating_point())
    # Test: all 8 images, the empty one included.
    assert 'Epoch(test) [8/8]' in log and 'coco/AP' in metrics


def test_crowd_and_outside_keypoints_give_no_tag_loss(tmp_path):
    """A batch of a crowd-only image and a person outside the image: no keypoint can be
    supervised, so the tag losses are exactly 0 and the heatmap losses (all-zero targets,
    crowd masked) finite and positive."""
    root = make_data(tmp_path / 'data', num_train=1, num_val=1)
    keep_only(root, 'train', [])
    add_image(root, 'train', 'crowd_only.jpg', _jpeg(), SIZE, [crowd(SIZE)])
    add_image(root, 'train', 'outside.jpg', _jpeg(), SIZE, [outside_person(SIZE)])
    runner = Runner.from_cfg(tiny_config(root, tmp_path / 'work', max_epochs=1,
                                         **{'train_cfg.val_interval': 2}))
    runner.train()
    found = dict(losses(log_of(runner)))
    assert found['loss_pull'] == 0 and found['loss_push'] == 0
    assert found['loss_heatmap_l0'] > 0 and found['loss_heatmap_l1'] > 0


@pytest.mark.parametrize('content, problem', [
    ('', 'the file is empty'),
    ('{"images": [', 'not valid JSON: Expecting value at line 1, column 13'),
    ('{"annotations": []}', '"images" is missing or not a list'),
    ({'keypoints': [1, 2, 2] * 16 + [1, 2]}, 'keypoints must be 3 x K numbers'),
    ({'image_id': 999}, 'image_id 999 is not in "images"'),
    ({'bbox': [1, 2, 3]}, 'bbox must be 4 numbers'),
])
def test_bad_annotation_file_fails_at_start(content, problem, tmp_path):
    root = make_data(tmp_path / 'data', num_train=2, num_val=1)
    ann_file = root / 'annotations' / 'person_keypoints_train.json'
    if isinstance(content, dict):  # one bad record in an otherwise good file
        data = json.loads(ann_file.read_text())
        data['annotations'][0].update(content)
        content = json.dumps(data)
    ann_file.write_text(content)
    runner = Runner.from_cfg(tiny_config(root, tmp_path / 'work'))
    where = re.escape(f'annotation file {ann_file}: ') + '(annotation 0 \\(id 100\\): )?'
    with pytest.raises(ValueError, match=where + re.escape(problem)):
        runner.train()
