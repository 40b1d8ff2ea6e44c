"""Tests of tools/demo.py: a randomly initialised toy model on a real image and video."""
import json
import math
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from mmengine.config import Config
from mmengine.structures import InstanceData
from mmpose.apis import MMPoseInferencer, init_model

from higherhrnet_plugin.datasets.transforms import HigherHRNetResize

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from _tools import load_tool  # noqa: E402

REPO = Path(__file__).resolve().parents[2]
DATA = REPO / '..' / 'shared' / 'data'
TOOL = REPO / 'tools' / 'demo.py'
CONFIG = REPO / 'configs' / 'toy' / 'higherhrnet_toy_synthetic.py'
COCO_IMAGE = DATA / 'coco' / '000000000785.jpg'  # 640 x 425
VIDEO = DATA / 'demo.mp4'
NUM_FRAMES = 3
NUM_KEYPOINTS = 17


demo = load_tool('demo')


@pytest.fixture(scope='module')
def checkpoint(tmp_path_factory):
    """A randomly initialised toy model saved as ``{'state_dict': ...}``."""
    torch.manual_seed(0)
    model = init_model(str(CONFIG), None, device='cpu')
    path = tmp_path_factory.mktemp('ckpt') / 'random_toy.pth'
    torch.save({'state_dict': model.state_dict()}, path)
    return path


@pytest.fixture(scope='module')
def png_image(tmp_path_factory):
    """The COCO image as a lossless PNG, so unchanged pixels compare equal after the demo."""
    path = tmp_path_factory.mktemp('inputs') / '000000000785.png'
    cv2.imwrite(str(path), cv2.imread(str(COCO_IMAGE)))
    return path


@pytest.fixture(scope='module')
def image_run(checkpoint, png_image, tmp_path_factory):
    """Output folder of the demo on ``png_image``: every person, every keypoint drawn."""
    out = tmp_path_factory.mktemp('image_run')
    assert _run(checkpoint, png_image, out, '--score-thr', '0', '--kpt-thr', '0') == 0
    return out


def _run(checkpoint, input_path, out_dir, *options):
    argv = [
        str(input_path), '--config',
        str(CONFIG), '--checkpoint',
        str(checkpoint), '--out-dir',
        str(out_dir), '--device', 'cpu', *options
    ]
    return demo.main(argv)


def _canvas_bounds(image_hw):
    """(x0, y0, x1, y1) of the scale-1 canvas in image pixels: where keypoints can land."""
    input_size = Config.fromfile(str(CONFIG)).codec['input_size'][0]
    size, center, scale = HigherHRNetResize(input_size).get_size_center_scale(image_hw, 1, 1)
    margin = 2 * scale[0] / size[0]  # two canvas pixels: decoder shifts (+0.5, +-0.25)
    low, high = center - scale / 2 - margin, center + scale / 2 + margin
    return (*low, *high)


def _check_results(results, image_id, image_hw):
    bounds = _canvas_bounds(image_hw)
    for result in results:
        assert set(result) == {'image_id', 'category_id', 'keypoints', 'score'}
        assert result['image_id'] == image_id and result['category_id'] == 1
        keypoints = np.array(result['keypoints']).reshape(NUM_KEYPOINTS, 3)
        assert np.isfinite(keypoints).all() and math.isfinite(result['score'])
        assert (keypoints[:, 0] >= bounds[0]).all() and (keypoints[:, 0] <= bounds[2]).all()
        assert (keypoints[:, 1] >= bounds[1]).all() and (keypoints[:, 1] <= bounds[3]).all()


def test_image(checkpoint, png_image, image_run, tmp_path):
    out = image_run
    source, drawn = cv2.imread(str(png_image)), cv2.imread(str(out / png_image.name))
    assert drawn.shape == source.shape == (425, 640, 3)
    assert (drawn != source).any(axis=2).sum() > 100  # skeletons drawn
    results = json.loads((out / '000000000785.json').read_text())
    assert 1 <= len(results) <= 30  # the codec's max_num_people
    _check_results(results, 785, source.shape[:2])
    assert sorted(p.name for p in out.iterdir()) == ['000000000785.json', '000000000785.png']

    # Same model, higher thresholds: exactly the persons scoring >= the 3rd best score, and
    # no keypoint drawn, so every pixel of the output equals the input's.
    threshold = sorted((r['score'] for r in results), reverse=True)[2]
    out_thr = tmp_path / 'out_thr'
    assert _run(checkpoint, png_image, out_thr, '--score-thr', repr(threshold), '--kpt-thr',
                '2') == 0
    kept = json.loads((out_thr / '000000000785.json').read_text())
    assert kept == [r for r in results if r['score'] >= threshold] and len(kept) >= 3
    np.testing.assert_array_equal(cv2.imread(str(out_thr / png_image.name)), source)


def test_matches_mmpose_inferencer(checkpoint, png_image, image_run):
    """mmpose's inferencer runs our config and gives the demo's persons and scores."""
    inferencer = MMPoseInferencer(pose2d=str(CONFIG), pose2d_weights=str(checkpoint), device='cpu')
    persons = next(inferencer(str(png_image)))['predictions'][0]
    results = json.loads((image_run / '000000000785.json').read_text())
    assert len(persons) == len(results)
    for person, result in zip(persons, results):
        keypoints = np.array(result['keypoints']).reshape(NUM_KEYPOINTS, 3)
        np.testing.assert_allclose(person['keypoints'], keypoints[:, :2], atol=1e-3)
        np.testing.assert_allclose(person['keypoint_scores'], keypoints[:, 2], atol=1e-3)
        assert person['bbox_score'] == pytest.approx(result['score'], abs=1e-6)
        # HigherHRNet adds the found keypoints' extent as the box (mmpose nests it in a
        # 1-tuple); keypoints with score 0 were not found.
        found = keypoints[keypoints[:, 2] > 0, :2]
        np.testing.assert_allclose(np.ravel(person['bbox']), [*found.min(0), *found.max(0)],
                                   atol=1e-3)


def test_video(checkpoint, tmp_path, capsys):
    out = tmp_path / 'out'
    assert _run(checkpoint, VIDEO, out, '--max-frames', str(NUM_FRAMES), '--score-thr', '0',
                '--no-flip') == 0
    assert 'FPS' in capsys.readouterr().out
    assert sorted(p.name for p in out.iterdir()) == ['demo.json', 'demo.mp4']
    capture = cv2.VideoCapture(str(out / 'demo.mp4'))
    frames = []
    while (frame := capture.read()[1]) is not None:
        frames.append(frame)
    capture.release()
    assert len(frames) == NUM_FRAMES and frames[0].shape == (540, 960, 3)
    records = json.loads((out / 'demo.json').read_text())
    assert [r['frame_id'] for r in records] == list(range(NUM_FRAMES))
    for record in records:
        assert record['predictions']
        _check_results(record['predictions'], record['frame_id'], (540, 960))


def test_failed_video_leaves_nothing(checkpoint, tmp_path, monkeypatch):
    predict, calls = demo.predict, []

    def failing_predict(*args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            raise RuntimeError('model failed on frame 1')
        return predict(*args, **kwargs)

    monkeypatch.setattr(demo, 'predict', failing_predict)
    out = tmp_path / 'out'
    with pytest.raises(RuntimeError, match='frame 1'):
        _run(checkpoint, VIDEO, out, '--max-frames', str(NUM_FRAMES))
    assert list(out.iterdir()) == []  # neither the video, the JSON nor a temporary file


@pytest.mark.parametrize('name, content, message', [
    ('missing.jpg', None, 'input not found'),
    ('broken.mp4', b'not a video', 'cannot read video'),
    ('notes.txt', b'not an image', 'not an image'),
    ('truncated.jpg', b'\xff\xd8\xff', 'not an image'),
])
def test_input_errors(checkpoint, tmp_path, capsys, name, content, message):
    path = tmp_path / name
    if content is not None:
        path.write_bytes(content)
    out = tmp_path / 'out'
    assert _run(checkpoint, path, out) == 1
    error = capsys.readouterr().err
    assert message in error and name in error
    assert not out.exists()


def test_error_exit_status_of_the_script(checkpoint, tmp_path):
    path = tmp_path / 'broken.mp4'
    path.write_bytes(b'not a video')
    out = tmp_path / 'out'
    done = subprocess.run([
        sys.executable,
        str(TOOL),
        str(path), '--checkpoint',
        str(checkpoint), '--out-dir',
        str(out)
    ],
                          capture_output=True,
                          text=True,
                          cwd=REPO,
                          timeout=120)
    assert done.returncode == 1
    assert f'error: cannot read video {path}' in done.stderr
    assert not out.exists()


@pytest.mark.parametrize('scales, aug_scales, multiscale', [
    ([1.0, 0.5, 2.0], [0.5, 2.0], True),
    ([2.0, 1.0, 2.0], [2.0], True),
    ([1.0], None, False),
])
def test_configure_test(scales, aug_scales, multiscale):
    cfg = Config.fromfile(str(CONFIG))
    demo.configure_test(cfg, flip=False, scales=scales)
    resize, pack = cfg.test_dataloader.dataset.pipeline[1:]
    assert resize.aug_scales == aug_scales
    assert cfg.model.test_cfg.multiscale_test is multiscale
    assert cfg.model.test_cfg.flip_test is False
    assert pack.meta_keys[-2:] == ('aug_scales', 'aug_imgs')
    assert len(set(pack.meta_keys)) == len(pack.meta_keys)


def test_multiscale_prediction(checkpoint, png_image, tmp_path):
    out = tmp_path / 'out'
    assert _run(checkpoint, png_image, out, '--scales', '1', '0.5', '--score-thr', '0') == 0
    results = json.loads((out / '000000000785.json').read_text())
    assert results
    _check_results(results, 785, (425, 640))


def test_scales_without_one_is_rejected(capsys):
    with pytest.raises(SystemExit) as exit_info:
        demo.parse_args(['x.jpg', '--checkpoint', 'c.pth', '--scales', '0.5', '2'])
    assert exit_info.value.code == 2
    assert 'contain 1' in capsys.readouterr().err


def test_coco_results():
    instances = InstanceData(keypoints=np.array([[[10.0, 20.0], [30.5, 40.25]]]),
                             keypoint_scores=np.array([[0.5, 0.125]]),
                             bbox_scores=np.array([0.75]))
    assert demo.coco_results(instances, 7) == [
        dict(image_id=7,
             category_id=1,
             keypoints=[10.0, 20.0, 0.5, 30.5, 40.25, 0.125],
             score=0.75)
    ]
    assert demo.image_id_of(Path('a/000000000785.jpg')) == 785
    assert demo.image_id_of(Path('a/frame_1.jpg')) == 'frame_1.jpg'


def test_resolve_source(tmp_path):
    for name in ('b.png', 'a.JPG', 'notes.txt'):
        (tmp_path / name).write_bytes(b'')
    assert demo.resolve_source(str(tmp_path)).images == (tmp_path / 'a.JPG', tmp_path / 'b.png')
    assert demo.resolve_source(str(tmp_path / 'notes.txt')).images == (tmp_path / 'notes.txt', )
    (tmp_path / 'clip.MP4').write_bytes(b'')
    assert demo.resolve_source(str(tmp_path / 'clip.MP4')).video == tmp_path / 'clip.MP4'
    webcam = demo.resolve_source('3')
    assert webcam.video == 3 and webcam.video_stem == 'webcam3'
    (tmp_path / 'empty').mkdir()
    with pytest.raises(demo.DemoError, match='no images'):
        demo.resolve_source(str(tmp_path / 'empty'))
    with pytest.raises(demo.DemoError, match='overwrite the inputs'):
        demo.check_outputs([tmp_path / 'a.JPG'], tmp_path)
    with pytest.raises(demo.DemoError, match="'a'"):
        demo.check_outputs([tmp_path / 'a.JPG', tmp_path / 'a.png'], tmp_path / 'out')
