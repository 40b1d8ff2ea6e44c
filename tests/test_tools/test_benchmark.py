"""Tests of tools/benchmark.py: synthetic maps, staged decoders, stage composition, quick run."""
import json
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from mmcv.transforms import Compose
from mmengine.config import Config

from higherhrnet_plugin.datasets.transforms.higher_hrnet_resize import get_warp_matrix

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from _tools import load_tool  # noqa: E402

REPO = Path(__file__).parents[2]
CONFIG = REPO / 'configs' / 'higherhrnet_w32_coco_512.py'
SHARED_DATA = REPO / '..' / 'shared' / 'data'


benchmark = load_tool('benchmark')
pytestmark = pytest.mark.usefixtures('one_torch_thread')


@pytest.fixture(scope='module')
def cfg():
    return Config.fromfile(str(CONFIG))


@pytest.fixture(scope='module')
def pool():
    content = json.loads((SHARED_DATA / 'coco' / 'test_coco.json').read_text())
    return benchmark.load_persons(content['annotations'], 17)


def _one_keypoint(x, y, num_keypoints=17):
    keypoints = np.zeros((1, num_keypoints, 2))
    keypoints[0, 0] = x, y
    visible = np.zeros((1, num_keypoints), bool)
    visible[0, 0] = True
    return keypoints, visible


def test_render_maps_peak_decodes_within_a_quarter_pixel(cfg):
    heatmaps, tags = benchmark.render_maps(*_one_keypoint(10.3, 20.8), (40, 32), sigma=2.0)
    assert heatmaps.shape == (17, 32, 40) and tags.shape == (17, 32, 40, 2)
    # sampled at pixel centres: (10.5 - 10.3)^2 + (20.5 - 20.8)^2 = 0.13
    assert np.unravel_index(heatmaps[0].argmax(), (32, 40)) == (20, 10)
    assert heatmaps[0, 20, 10] == np.float32(np.exp(-0.13 / 8))
    assert not heatmaps[1:].any()
    # centre 10.5 / 20.5, the larger neighbours are left (x 9) and below (y 21)
    for name, decoder in benchmark.build_decoders(cfg.model.head.decoder, (40, 32)).items():
        keypoints, scores, _ = decoder.decode(torch.from_numpy(heatmaps), torch.from_numpy(tags))
        assert keypoints[0, 0].tolist() == [10.25, 20.75], name
        assert scores[0, 0] == heatmaps[0, 20, 10]


def test_render_maps_tags():
    keypoints = np.array([[[5.0, 5.0], [8.0, 5.0]], [[50.0, 20.0], [55.0, 20.0]]])
    visible = np.array([[True, True], [True, False]])
    heatmaps, tags = benchmark.render_maps(keypoints, visible, (64, 32), tag_spacing=1.5)
    # one tag per person on both channels where its Gaussian is the largest
    assert tags[0, 5, 5].tolist() == [0.0, 0.0] and tags[0, 20, 50].tolist() == [1.5, 1.5]
    assert tags[1, 5, 8].tolist() == [0.0, 0.0]
    # person 1's keypoint 1 is not visible: its map holds person 1's region tag there
    assert heatmaps[1, 20, 55] == 0 and tags[1, 20, 55, 0] == 1.5
    assert tags[1, 31, 63, 0] == 1.5 and tags[1, 0, 0, 0] == 0.0  # nearest person's
    _, background = benchmark.render_maps(keypoints, visible, (64, 32), tag_fill='background')
    assert background[1, 20, 55, 0] == -1 and background[0, 20, 50, 0] == 1
    assert (background[..., 0] == -1).mean() > 0.8


def test_perturb_and_noise_are_seeded():
    keypoints, visible = np.zeros((30, 17, 2)), np.ones((30, 17), bool)
    moved, kept = benchmark.perturb(keypoints, visible, np.random.default_rng(0))
    assert set(np.unique(moved)) == {-1.0, 0.0, 1.0}
    assert 0.05 < 1 - kept.mean() < 0.15
    again = benchmark.perturb(keypoints, visible, np.random.default_rng(0))
    assert np.array_equal(again[0], moved) and np.array_equal(again[1], kept)
    noisy = benchmark.add_noise(np.zeros((100, 100)), np.random.default_rng(0), 0.1)
    assert noisy.dtype == np.float32 and abs(noisy.std() - 0.1) < 0.005


@pytest.mark.parametrize('num_persons', [1, 5, 30])
def test_crowd_layout_gives_disjoint_persons_inside_the_canvas(pool, num_persons):
    canvas = (704, 512)
    layout = benchmark.crowd_layout(pool, num_persons, canvas)
    assert layout.keypoints.shape == (num_persons, 17, 2)
    assert np.array_equal(layout.visible, pool.visible[np.arange(num_persons) % len(pool.visible)])
    x0, y0 = layout.bboxes[:, 0], layout.bboxes[:, 1]
    x1, y1 = x0 + layout.bboxes[:, 2], y0 + layout.bboxes[:, 3]
    assert (x0 >= 0).all() and (y0 >= 0).all() and (x1 <= 704).all() and (y1 <= 512).all()
    points = layout.keypoints[layout.visible]
    assert (points >= 0).all() and (points < canvas).all()
    overlap_x = np.minimum(x1[:, None], x1) > np.maximum(x0[:, None], x0)
    overlap_y = np.minimum(y1[:, None], y1) > np.maximum(y0[:, None], y0)
    assert ((overlap_x & overlap_y).sum(axis=1) == 1).all()  # each overlaps itself only


def test_canvas_projection_is_the_warp_and_its_inverse_mmpose_s(cfg):
    resize = benchmark.config_resize(cfg)
    points = np.random.default_rng(0).uniform(0, 425, size=(50, 2))
    for hw in [(425, 640), (333, 500), (1000, 665)]:
        size, center, scale = resize.get_size_center_scale(hw, 1.0, 1.0)
        canvas = benchmark.image_to_canvas(points, size, center, scale)
        warp = get_warp_matrix(center, scale[0], size)
        expected = cv2.transform(points[None], warp)[0]
        np.testing.assert_allclose(canvas, expected, atol=2e-3)
        np.testing.assert_allclose(benchmark.canvas_to_image(canvas, size, center, scale),
                                   points,
                                   atol=1e-9)


def test_mmpose_tag_layout_is_l_major():
    tags = torch.rand(17, 4, 5, 2)
    flat = benchmark.mmpose_tags(tags)
    assert flat.shape == (34, 4, 5)
    assert torch.equal(flat[1 * 17 + 3], tags[3, ..., 1]) and torch.equal(flat[3], tags[3, ..., 0])


@pytest.mark.parametrize('maps', list(benchmark.SYNTHETIC_VARIANTS))
def test_staged_decoders_equal_the_public_calls(cfg, pool, maps):
    canvas = (192, 128)
    layout = benchmark.crowd_layout(pool, 5, canvas)
    perturbed, tag_fill, heat_noise = benchmark.SYNTHETIC_VARIANTS[maps]
    heatmaps, tags = (
        torch.from_numpy(m)
        for m in benchmark.synthetic_maps(layout.keypoints, layout.visible, canvas, perturbed,
                                          np.random.default_rng(0), 2.0, tag_fill, heat_noise))
    for name, decoder in benchmark.build_decoders(cfg.model.head.decoder, canvas).items():
        timer = benchmark.StageTimer()
        staged = decoder.stages(heatmaps, tags, timer)
        public = decoder.decode(heatmaps, tags)
        assert len(public[0]) >= 4, name
        for got, expected in zip(staged, public):
            assert np.array_equal(got, expected), name
        assert set(timer.seconds) == set(benchmark.DECODE_STAGES)


def test_stage_composition_equals_the_model(cfg):
    cfg = Config.fromfile(str(CONFIG))
    benchmark.set_input_size(cfg, 128)
    model = benchmark.build_model(cfg, None)
    pipeline = Compose(cfg.test_dataloader.dataset.pipeline)
    data_info = dict(img_path=str(SHARED_DATA / 'coco' / '000000000785.jpg'), **model.dataset_meta)
    data = benchmark.preprocess(model, pipeline, data_info)
    meta = data['data_samples'][0].metainfo
    canvas = tuple(meta['input_size'])
    assert canvas == (192, 128)
    with torch.no_grad():
        heatmaps, tags = benchmark.aggregate(model, benchmark.network(model, data['inputs']),
                                             canvas, meta['flip_indices'])
        feats = [model.extract_feat(data['inputs']), model.extract_feat(data['inputs'].flip(-1))]
        _, fields = model.head.predict(feats, data['data_samples'],
                                       dict(model.test_cfg, output_heatmaps=True))
    assert torch.equal(heatmaps, fields[0].heatmaps)
    assert torch.equal(benchmark.mmpose_tags(tags), fields[0].tags)
    # back-projection helper == mmpose's add_pred_to_datasample
    points = np.random.default_rng(0).uniform(0, 128, size=(2, 17, 2)).astype(np.float32)
    pred = benchmark.InstanceData(keypoints=points.copy(), keypoint_scores=np.ones((2, 17)))
    sample = model.add_pred_to_datasample([pred], None, [data['data_samples'][0]])[0]
    np.testing.assert_allclose(sample.pred_instances.keypoints,
                               benchmark.canvas_to_image(points, canvas, meta['input_center'],
                                                         meta['input_scale']),
                               rtol=1e-6)


def test_targets():
    results = dict(synthetic=[
        dict(decoder='fast', post_percent=4.0),
        dict(decoder='mmpose', post_percent=40)
    ],
                   ratios=[
                       dict(num_persons=1, fast_ms=1.0, reference_over_fast=30.0,
                            mmpose_over_fast=12.0),
                       dict(num_persons=30, fast_ms=6.0, reference_over_fast=20.0,
                            mmpose_over_fast=9.0)
                   ],
                   round_trip_ap=[dict(ap=dict(fast=0.9, reference=0.95, mmpose=0.5))],
                   throughput=[
                       dict(set='a', batch_size=1, images_per_second=1.0),
                       dict(set='a', batch_size=4, images_per_second=1.6)
                   ])
    assert [(t['met'], t['worst'])
            for t in benchmark.targets(results).values()] == [(True, 4.0), (False, 9.0),
                                                              (True, pytest.approx(0.05)),
                                                              (True, 1.6), (False, 6.0),
                                                              (True, 20.0)]
    results = dict(many_groups=[dict(decoder='fast', post_ms=400.0),
                                dict(decoder='fast full', post_ms=1200.0),
                                dict(decoder='reference', post_ms=9e5)],
                   inference=[dict(outside_percent=4.0), dict(outside_percent=6.0)])
    assert [(t['met'], t['worst'])
            for t in benchmark.targets(results).values()] == [(False, 1200.0), (False, 6.0)]


def test_quick_run(tmp_path, capsys):
    out = tmp_path / 'results.json'
    assert benchmark.main(['--quick', '--persons', '2', '--threads', '1', '--out', str(out)]) == 0
    results = json.loads(out.read_text())
    assert results['environment']['threads'] == 1 and results['environment']['input_size'] == 256
    (image, ) = results['images']
    assert image['image'] == 'coco/000000000785.jpg' and image['canvas'] == [448, 256]
    assert image['network_ms'] > 0 and image['decoders']['fast']['persons'] == 0  # random init
    assert results['canvas']['canvas'] == [384, 256]
    rows = results['synthetic']
    assert len(rows) == 4 * 3 and {r['num_persons'] for r in rows} == {2}
    clean = [r for r in rows if r['maps'] == 'clean']
    assert [r['decoder'] for r in clean] == ['fast', 'reference', 'mmpose']
    assert all(r['persons'] == 2 for r in clean)
    assert len(results['ratios']) == 4
    perfect = [r for r in results['round_trip_ap'] if r['maps'] == 'perfect']
    assert perfect == [
        dict(dataset='coco', maps='perfect', ap=dict(fast=1.0, reference=1.0, mmpose=1.0))
    ]
    assert [(r['batch_size'], r['images']) for r in results['throughput']] == [(1, 2), (2, 2)]
    assert len(results['targets']) == 6
    printed = capsys.readouterr().out
    assert '| persons | maps | decoder | found |' in printed and '## Targets' in printed


def test_sections(tmp_path, capsys):
    out = tmp_path / 'ap.json'
    assert benchmark.main(['--quick', '--sections', 'ap', '--out', str(out)]) == 0
    results = json.loads(out.read_text())
    assert set(results) == {'environment', 'round_trip_ap', 'targets'}
    assert list(results['targets']) == ['|AP fast - AP reference| <= 0.1']
    assert '## Real images' not in capsys.readouterr().out


def test_device_argument_adds_the_device_section():
    args = benchmark.parse_args(['--device', 'cuda', '--sections', 'synthetic'])
    assert args.device == 'cuda' and args.sections == ['synthetic', 'device']
    assert benchmark.parse_args([]).sections == list(benchmark.DEFAULT_SECTIONS)
    assert 'device' not in benchmark.parse_args([]).sections
    if not torch.cuda.is_available():
        with pytest.raises(SystemExit, match='--device cuda: torch sees no CUDA device'):
            benchmark.time_device(None, None, None, 'cuda', (1, ), 1)


def test_device_section_runs_on_any_device(cfg):
    """The device section's code on CPU (a GPU run takes the same lines, plus synchronize)."""
    toy = Config.fromfile(str(REPO / 'configs' / 'toy' / 'higherhrnet_toy_synthetic.py'))
    model = benchmark.default_init_model(toy)
    image = sorted((SHARED_DATA / 'coco').glob('*.jpg'))[0]
    rows = benchmark.time_device(model, Compose(toy.test_dataloader.dataset.pipeline), image,
                                 'cpu', (1, 2), 0)
    assert [r['batch_size'] for r in rows] == [1, 2]
    for row in rows:
        assert set(row['stages_ms']) == {'network', 'aggregation', 'decode'}
        assert row['images_per_second'] > 0
    table = benchmark.markdown_table(benchmark.DEVICE_HEADERS, benchmark.device_table(rows))
    assert '| cpu | 2 |' in table


def test_network_clock_times_backbone_and_head_within_the_call():
    from benchmark_lib.inference_stages import network_clock

    class Head(torch.nn.Module):

        def forward(self, feats):
            time.sleep(0.02)
            return feats

    class Model(torch.nn.Module):

        def __init__(self):
            super().__init__()
            self.head = Head()

        def extract_feat(self, inputs):
            time.sleep(0.03)
            return inputs

        def predict(self, inputs):  # the estimator calls both, the head through __call__
            time.sleep(0.05)
            return self.head(self.extract_feat(inputs))

    model = Model()
    with network_clock(model) as spent:
        model.predict(1)
        model.predict(2)
    assert 0.1 <= spent[0] < 0.15  # 2 x (30 + 20) ms, not the 50 ms outside
    assert 'extract_feat' not in vars(model) and 'forward' not in vars(model.head)  # restored
