"""Encode -> decode round trip on the real annotations, scored by mmpose's CocoMetric.

For every image of ../shared/data/{coco,crowdpose,ochuman}, the GT keypoints are projected
onto the image's ``HigherHRNetResize`` canvas, drawn as perfect aggregated maps (a Gaussian
per visible keypoint sampled at pixel centres, one tag per person on both flip channels:
``tools/benchmark.py``'s ``render_maps``), decoded by the ``fast`` and ``reference``
parsers (``fast`` with its default ``refine_search='peaks'``, and ``fast-full``, its exact
``'full'`` refine), projected back with mmpose's formula and evaluated as the configs do
(``nms_mode='none'``, ``score_mode='bbox'``; CrowdPose with ``iou_type='keypoints_crowd'``,
``use_area=False``). Perturbed maps move the peaks by up to 1 px, drop 10% of the joints
and add noise of std 0.1 to the tags (seeded per image).
"""
import json
import sys
from pathlib import Path

import numpy as np
import pytest
from mmengine.config import Config

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from _tools import load_tool  # noqa: E402

REPO = Path(__file__).parents[2]
SHARED_DATA = REPO / '..' / 'shared' / 'data'
# dataset -> config whose codec and test resize it is evaluated with
CONFIGS = {
    'coco': 'higherhrnet_w32_coco_512.py',
    'crowdpose': 'higherhrnet_w32_crowdpose_512.py',
    'ochuman': 'higherhrnet_w32_coco_512.py',
}
DECODERS = ('fast', 'reference')  # compared by AP
# The round-trip AP that README quotes, to its four decimals: dataset -> maps -> (fast,
# reference); and the sets it comes from: (images, persons drawn = annotations with a
# labelled keypoint and no crowd flag, labelled keypoints of those persons).
QUOTED_AP = {
    'coco': dict(perfect=(1.0, 1.0), perturbed=(0.9353, 0.9353)),
    'crowdpose': dict(perfect=(1.0, 1.0), perturbed=(0.8680, 0.8680)),
    'ochuman': dict(perfect=(1.0, 1.0), perturbed=(0.8356, 0.8158)),
}
SET_SIZES = {'coco': (4, 12, 181), 'crowdpose': (2, 4, 47), 'ochuman': (3, 5, 73)}


benchmark = load_tool('benchmark')
pytestmark = pytest.mark.usefixtures('one_torch_thread')


@pytest.fixture(scope='module', params=list(CONFIGS))
def dataset(request):
    """(name, predictions per maps kind per decoder, resize) of one dataset."""
    name = request.param
    cfg = Config.fromfile(str(REPO / 'configs' / CONFIGS[name]))
    data_dir = SHARED_DATA / name
    num_keypoints = benchmark.dataset_num_keypoints(data_dir, name)
    decoders = benchmark.build_decoders(cfg.model.head.decoder, (64, 64), num_keypoints)
    decoders = {d: decoders[d] for d in DECODERS}
    decoders['fast-full'] = benchmark.build_decoders(
        dict(cfg.model.head.decoder, decode_refine_search='full'), (64, 64),
        num_keypoints)['fast']
    resize = benchmark.config_resize(cfg)
    predictions = {
        maps:
        benchmark.round_trip_predictions(data_dir,
                                         benchmark.DATASETS[name],
                                         resize,
                                         decoders,
                                         perturbed=maps == 'perturbed')
        for maps in ('perfect', 'perturbed')
    }
    return name, predictions, resize


def _ap(name, predictions):
    return benchmark.coco_ap(SHARED_DATA / name, benchmark.DATASETS[name], predictions)


def test_perfect_maps_give_every_person_back(dataset):
    name, predictions, resize = dataset
    content = json.loads((SHARED_DATA / name / benchmark.DATASETS[name].ann_file).read_text())
    num_keypoints = len(content['categories'][0]['keypoints'])
    for decoder in DECODERS:
        for image, pred in zip(content['images'], predictions['perfect'][decoder]):
            gt = benchmark.load_persons(
                [a for a in content['annotations'] if a['image_id'] == image['id']], num_keypoints)
            assert len(pred['keypoints']) == len(gt.keypoints), (name, decoder, image['id'])
            size, _, scale = resize.get_size_center_scale((image['height'], image['width']), 1, 1)
            # decoders are exact to 0.25 canvas px: s / W' image px
            tolerance = 0.25 * scale[0] / size[0] + 1e-3
            for keypoints, visible in zip(gt.keypoints, gt.visible):
                errors = np.abs(pred['keypoints'] - keypoints).max(axis=-1)
                assert np.where(visible, errors, 0).max(axis=1).min() <= tolerance


def test_the_sets_have_the_quoted_sizes(dataset):
    name, _, _ = dataset
    content = json.loads((SHARED_DATA / name / benchmark.DATASETS[name].ann_file).read_text())
    num_keypoints = len(content['categories'][0]['keypoints'])
    persons = benchmark.load_persons(content['annotations'], num_keypoints)
    sizes = (len(content['images']), len(persons.keypoints), int(persons.visible.sum()))
    assert sizes == SET_SIZES[name]


@pytest.mark.parametrize('maps', ['perfect', 'perturbed'])
def test_ap_is_as_quoted(dataset, maps, capsys):
    """fast and reference AP to README's four decimals (equal but on OCHuman's perturbed
    maps, where ``'peaks'`` refine fills some missing joints elsewhere)."""
    name, predictions, _ = dataset
    aps = tuple(_ap(name, predictions[maps][decoder]) for decoder in DECODERS)
    with capsys.disabled():
        print(f'\n{name} {maps}: AP fast {aps[0]:.4f}, reference {aps[1]:.4f}')
    assert tuple(round(ap, 4) for ap in aps) == QUOTED_AP[name][maps]


@pytest.mark.parametrize('maps', ['perfect', 'perturbed'])
def test_fast_full_differs_from_reference_only_on_plateaus(dataset, maps):
    """Exact refine: equal scores; a keypoint may sit on the other pixel of a 2-pixel plateau.

    A GT coordinate that falls on an integer canvas coordinate gives two equal peak pixels;
    both survive the official NMS and their order (torch.topk's vs pixel order in ``fast``)
    decides which one a person gets (documented in ``grouping_fast``): 0.5 canvas px apart.
    """
    name, predictions, resize = dataset
    content = json.loads((SHARED_DATA / name / benchmark.DATASETS[name].ann_file).read_text())
    moved = total = 0
    for image, fast, reference in zip(content['images'], predictions[maps]['fast-full'],
                                      predictions[maps]['reference']):
        for key in ('keypoint_scores', 'bbox_scores'):
            assert np.array_equal(fast[key], reference[key]), key
        size, _, scale = resize.get_size_center_scale((image['height'], image['width']), 1, 1)
        step = np.abs(fast['keypoints'] - reference['keypoints']) * size[0] / scale[0]
        assert np.all((step < 1e-3) | (np.abs(step - 0.5) < 1e-3))
        moved += np.any(step > 0.25, axis=-1).sum()
        total += step.shape[0] * step.shape[1]
    assert moved <= 0.1 * total


@pytest.mark.parametrize('maps', ['perfect', 'perturbed'])
def test_fast_peaks_refine_keeps_persons_and_their_scores(dataset, maps):
    """The 'peaks' refine changes only refined keypoints: same persons, same person scores."""
    name, predictions, _ = dataset
    for peaks, full in zip(predictions[maps]['fast'], predictions[maps]['fast-full']):
        assert np.array_equal(peaks['bbox_scores'], full['bbox_scores'])
        grouped = full['keypoint_scores'] > 0.1  # the detection threshold: not refined
        assert np.array_equal(peaks['keypoint_scores'][grouped], full['keypoint_scores'][grouped])
        assert np.array_equal(peaks['keypoints'][grouped], full['keypoints'][grouped])
