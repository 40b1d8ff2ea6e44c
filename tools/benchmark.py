"""CPU benchmark of HigherHRNet's test step: time per stage, decoder comparison, throughput.

Usage::

    python tools/benchmark.py [--config CFG] [--checkpoint CKPT] [--images DIR [DIR ...]]
        [--persons 1 5 10 20 30] [--repeats 5] [--network-repeats 3] [--threads N]
        [--input-size I] [--out results.json] [--quick]
        [--sections images synthetic ap throughput onnx many_groups inference device]
        [--device cuda] [--many-groups-decoders fast 'fast full' reference]

Prints markdown tables and, with ``--out``, writes every number as JSON:

1. **Real images** (``--images``, default ``../shared/data/{coco,crowdpose,ochuman}``): ms
   per stage of the flip test of one image. Stages:

   - pre-process: ``LoadImage`` + ``HigherHRNetResize`` + ``PackPoseInputs`` (the config's
     test pipeline) + the model's data preprocessor;
   - network: backbone + head forward of the image and of its mirror;
   - aggregation: the head's resize/flip/level averaging onto the canvas;
   - NMS + top-k, grouping, adjust (quarter-pixel shift, person scores), refine (filling
     missing keypoints): the decoder's internal functions called one by one (their result
     equals the decoder's own, which the tests check); "decode" columns time the decoder's
     public call;
   - back-projection: mmpose's ``add_pred_to_datasample`` (canvas -> image pixels).

   Without ``--checkpoint`` the weights are random (the official initialisation), so the
   heatmaps hold no peak above the threshold and the decoder columns show its floor. The
   network time does not depend on the weights; the decoder time does, through the number
   of candidates, hence section 2.
2. **Synthetic maps**: aggregated maps on the canvas of a 640x480 COCO image with 1, 5, ...
   persons laid out on a grid, made from the persons of ``test_coco.json`` (a Gaussian per
   visible keypoint, one tag per person: :func:`render_maps`), in the variants of
   :data:`SYNTHETIC_VARIANTS`: clean; perturbed (peaks moved by up to 1 px, tag noise 0.1,
   10% of the joints missing); perturbed with heatmap noise; clean with a background tag.
   Decoded by our ``fast`` and ``reference`` parsers and by mmpose 1.x
   ``AssociativeEmbedding.batch_decode`` (same settings, tags in its (B, L*K, H, W) L-major
   layout). Post-processing = aggregation + decoding + back-projection, in % of the network
   time on the same canvas.
3. **Round-trip AP**: GT keypoints -> perfect (and perturbed) maps on each image's canvas ->
   decode -> back-projection -> mmpose ``CocoMetric`` (``nms_mode='none'``,
   ``score_mode='bbox'``), per decoder (:func:`round_trip_ap`).
4. **Throughput**: images/s of the config's val dataloader (no workers) + ``model.test_step``
   at batch 1 and 4 on one COCO image replicated 8 times (equal canvases) and, when the
   config has a ``val_dataloader.batch_sampler`` (batches of equal canvases; used in both
   sets), on the 4 COCO images twice each (3 canvas sizes).

5. **Deploy** (``--sections onnx``, not run by default: it exports the model twice): eager
   torch vs the exported graph in onnxruntime (CPU, same thread count), with and without flip
   test, per stage (pre-process, network + aggregation, decode, back-projection) and end to
   end (``inference_bottomup`` vs ``OnnxPoseEstimator``), on the ``--images``; images/s from
   the mean end-to-end time (:mod:`benchmark_lib.deploy_runtime`).
6. **Many groups** (``--sections many_groups``): COCO 785 through W32-512 with PyTorch's
   default init and BN statistics of the image itself, 504 groups: pre-process, aggregation,
   decode (``--many-groups-decoders``), back-projection, timed apart from the network
   (:mod:`benchmark_lib.many_groups`).
7. **Inference** (``--sections inference``): ``inference_bottomup`` on the COCO images,
   W32-512, flip, default init: end to end, the network's part of each call (timed inside
   it) and the rest, and stage by stage (pipeline build, load, resize, pack, collate, data
   preprocessor, network, aggregation, decode, back-projection, boxes;
   :mod:`benchmark_lib.inference_stages`).
8. **Device** (``--device cuda``): network, aggregation and decode per image and images/s at
   batch 1 and 4 on the device (:mod:`benchmark_lib.device_timing`).

Times are medians over ``--repeats`` runs after one untimed run; the network runs
``--network-repeats`` times without a warm-up run (the median drops the first, slower one).
``--quick`` is a small smoke run: input 256, one image, 1 and 5 persons, one repeat, 2
images and batch 2 for throughput. ``--sections`` runs a subset. On a shared machine,
``--threads 1`` avoids the large slow-down of busy-waiting torch threads competing for few
cores.
"""
import argparse
import json
import os
import sys
from pathlib import Path
from typing import List, Optional, Sequence

import torch
from mmcv.transforms import Compose
from mmengine.config import Config
from mmengine.registry import init_default_scope
from mmengine.structures import InstanceData  # noqa: F401  (tests build predictions with it)

import higherhrnet_plugin  # noqa: F401  (registers the model, codec and transforms)

# Run as a script from the repository root: its helpers are in tools/benchmark_lib/.
sys.path.insert(0, str(Path(__file__).resolve().parent))

from benchmark_lib.ap import (  # noqa: E402, F401  (re-exported: tests use benchmark.<name>)
    DATASETS, coco_ap, dataset_num_keypoints, round_trip_ap, round_trip_predictions)
from benchmark_lib.decoders import (  # noqa: E402, F401
    DECODE_STAGES, build_decoders, mmpose_tags)
from benchmark_lib.device_timing import (  # noqa: E402, F401
    DEVICE_HEADERS, device_table, time_device)
from benchmark_lib.inference_stages import default_init_model, time_inference  # noqa: E402
from benchmark_lib.many_groups import many_groups_decoders, time_many_groups  # noqa: E402
from benchmark_lib.deploy_runtime import summary_rows as deploy_summary  # noqa: E402
from benchmark_lib.deploy_runtime import time_deploy  # noqa: E402
from benchmark_lib.maps import (  # noqa: E402, F401
    SYNTHETIC_VARIANTS, add_noise, canvas_to_image, crowd_layout, image_to_canvas, load_persons,
    perturb, render_maps, synthetic_maps)
from benchmark_lib.model import (  # noqa: E402, F401
    aggregate, build_model, config_resize, network, preprocess, set_input_size, time_canvas,
    time_image, time_synthetic)
from benchmark_lib.paths import REPO_ROOT, SHARED_DATA  # noqa: E402
from benchmark_lib.report import markdown_table, ratio_rows, report, targets  # noqa: E402, F401
from benchmark_lib.throughput import time_throughput  # noqa: E402
from benchmark_lib.timing import StageTimer  # noqa: E402, F401

DEFAULT_CONFIG = REPO_ROOT / 'configs' / 'higherhrnet_w32_coco_512.py'
IMAGE_EXTENSIONS = ('.jpg', '.jpeg', '.png', '.bmp')
SECTIONS = ('images', 'synthetic', 'ap', 'throughput', 'onnx', 'many_groups', 'inference',
            'device')
DEFAULT_SECTIONS = SECTIONS[:4]  # 'onnx' exports the model twice: asked for by name
# Minutes each on CPU: run only when named in --sections ('device' also with --device).
EXTRA_SECTIONS = ('many_groups', 'inference', 'device')
# The (H, W) of the image whose canvas the synthetic maps use: COCO's most common size.
SYNTHETIC_IMAGE_HW = (480, 640)


# ----------------------------------------------------------------------------------------
# Command line


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--config', default=str(DEFAULT_CONFIG))
    parser.add_argument('--checkpoint', help='weights; default: random (official init)')
    parser.add_argument('--images',
                        nargs='+',
                        type=Path,
                        help='image folders (default ../shared/data/{coco,crowdpose,ochuman})')
    parser.add_argument('--persons', nargs='+', type=int, help='default 1 5 10 20 30')
    parser.add_argument('--repeats', type=int, help='runs per stage (median); default 5')
    parser.add_argument('--network-repeats', type=int, help='network runs (median); default 3')
    parser.add_argument('--threads', type=int, help='torch threads; default torch\'s')
    parser.add_argument('--input-size', type=int, help='HigherHRNetResize input size')
    parser.add_argument('--out', type=Path, help='write the results as JSON')
    parser.add_argument('--quick', action='store_true', help='small smoke run (see above)')
    parser.add_argument('--sections',
                        nargs='+',
                        choices=SECTIONS,
                        default=list(DEFAULT_SECTIONS),
                        help='sections to run (default: the first four)')
    parser.add_argument('--device',
                        default='cpu',
                        help='cuda[:i]: adds the device section (network, aggregation, decode '
                        'on the device, batch 1 and 4)')
    parser.add_argument('--many-groups-decoders',
                        nargs='+',
                        choices=('fast', 'fast full', 'reference'),
                        default=['fast', 'fast full'],
                        help="decoders of the many_groups section ('reference': minutes)")
    args = parser.parse_args(argv)
    if args.device != 'cpu' and 'device' not in args.sections:
        args.sections.append('device')
    quick = dict(persons=[1, 5], repeats=1, network_repeats=1, input_size=256)
    full = dict(persons=[1, 5, 10, 20, 30], repeats=5, network_repeats=3)
    for key, value in (quick if args.quick else full).items():
        if getattr(args, key) is None:
            setattr(args, key, value)
    if args.images is None:
        args.images = [SHARED_DATA / name for name in DATASETS]
    return args


def image_paths(folders: Sequence[Path], quick: bool) -> List[Path]:
    paths = [
        p for folder in folders for p in sorted(folder.iterdir())
        if p.suffix.lower() in IMAGE_EXTENSIONS
    ]
    if not paths:
        raise SystemExit(f'no images in {[str(f) for f in folders]}')
    return paths[:1] if quick else paths


def run(args: argparse.Namespace) -> dict:
    """Every section; returns the results dict (also the JSON written by ``--out``)."""
    init_default_scope('mmpose')
    if args.threads:
        torch.set_num_threads(args.threads)
    cfg = Config.fromfile(args.config)
    if args.input_size:
        set_input_size(cfg, args.input_size)
    model = build_model(cfg, args.checkpoint)
    resize = config_resize(cfg)
    pipeline = Compose(cfg.test_dataloader.dataset.pipeline)
    codec_cfg = cfg.model.head.decoder
    canvas = resize.get_size_center_scale(SYNTHETIC_IMAGE_HW, 1.0, 1.0)[0]
    decoders = build_decoders(codec_cfg, canvas)
    load_before = os.getloadavg()[0]
    pool = load_persons(
        json.loads((SHARED_DATA / 'coco' / 'test_coco.json').read_text())['annotations'], 17)

    with torch.no_grad():
        network(model, torch.zeros(1, 3, 64, 64))  # warm-up
    results = dict(
        environment=dict(config=Path(args.config).name,
                         input_size=resize.input_size,
                         weights=args.checkpoint or 'random init (official), no checkpoint',
                         threads=torch.get_num_threads(),
                         cpu_count=os.cpu_count(),
                         torch=torch.__version__,
                         repeats=args.repeats,
                         network_repeats=args.network_repeats,
                         load_before=round(load_before, 2)))
    sections = set(args.sections)
    if 'images' in sections:
        results['images'] = [
            time_image(model, pipeline, p, decoders, args.repeats, args.network_repeats)
            for p in image_paths(args.images, args.quick)
        ]
    if 'synthetic' in sections:
        results['canvas'] = time_canvas(model, canvas, args.network_repeats, args.repeats)
        results['synthetic'] = time_synthetic(model, pool, results['canvas'], decoders,
                                              args.persons, args.repeats)
        results['ratios'] = ratio_rows(results['synthetic'])
    if 'ap' in sections:
        results['round_trip_ap'] = round_trip_ap(SHARED_DATA, ['coco'] if args.quick else DATASETS,
                                                 resize, codec_cfg)
    if 'throughput' in sections:
        results['throughput'] = time_throughput(cfg, model, (1, 2) if args.quick else (1, 4),
                                                2 if args.quick else 8, args.quick)
    run_extra_sections(args, cfg, pipeline, results)
    if 'onnx' in sections:
        results['deploy'] = time_deploy(cfg, model, image_paths(args.images, args.quick),
                                        (True, False), torch.get_num_threads(), args.repeats)
        results['deploy_summary'] = deploy_summary(results['deploy'])
    results['targets'] = targets(results)
    results['environment']['load_after'] = round(os.getloadavg()[0], 2)
    return results


def run_extra_sections(args: argparse.Namespace, cfg: Config, pipeline: Compose,
                       results: dict) -> None:
    """The sections of ``EXTRA_SECTIONS`` named in ``args.sections``, into ``results``."""
    sections = set(args.sections)
    if 'many_groups' in sections:
        decoders = many_groups_decoders(cfg.model.head.decoder, args.many_groups_decoders)
        results['many_groups'] = time_many_groups(cfg, decoders, args.repeats)
    if 'inference' in sections:
        coco = sorted((SHARED_DATA / 'coco').glob('*.jpg'))
        results['inference'] = time_inference(default_init_model(cfg), coco[:1] if args.quick
                                              else coco, args.repeats)
    if 'device' in sections:
        image = sorted((SHARED_DATA / 'coco').glob('*.jpg'))[0]
        results['device'] = time_device(default_init_model(cfg), pipeline, image, args.device,
                                        (1, 2) if args.quick else (1, 4), args.repeats)


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = parse_args(argv)
    results = run(args)
    print(report(results))
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(results, indent=1))
    return 0


if __name__ == '__main__':
    sys.exit(main())
