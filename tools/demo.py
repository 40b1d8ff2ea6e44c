"""Run a HigherHRNet model on images, a folder, a video or a webcam; draw skeletons, save JSON.

Usage::

    python tools/demo.py INPUT --checkpoint CKPT [--config CFG] [--out-dir DIR]
        [--device DEV] [--flip | --no-flip] [--scales 1 0.5 2] [--score-thr T]
        [--kpt-thr T] [--max-frames N] [--radius R] [--thickness T]

INPUT is an image file, a folder of images, a video file or a webcam id (an integer).
Written under ``--out-dir`` (default ``work_dirs/demo``):

- an image: ``<name>`` (same name and size as the input, skeletons drawn with mmpose's
  ``PoseLocalVisualizer`` and the skeleton of the config's dataset) and ``<stem>.json``,
  a list of COCO results ``{"image_id", "category_id": 1, "keypoints": [x, y, score] * K,
  "score"}``; ``image_id`` is the file stem as an integer when it is one (COCO's
  ``000000000785.jpg`` -> 785), otherwise the file name;
- a video / webcam: ``<stem>.mp4`` (``webcam<id>.mp4``; same size and frame rate as the
  input) and ``<stem>.json``, a list over frames of ``{"frame_id": i, "predictions":
  [COCO results with image_id i]}``.

Every file is written to a hidden temporary sibling and renamed into place (with ``fsync``),
so none is ever half-written, even when the process is killed; a video that fails (or a
video file interrupted with Ctrl-C) leaves no output. A video's results are streamed to the
temporary JSON frame by frame, so memory stays flat however long the video; the final line
reports the resident memory after frames 1, 2, 4, ... and the last one. Ctrl-C stops a
webcam and keeps what was recorded. Problems with the input (missing file, unreadable
video, a file that is not an image) exit with status 1 and a message.

Prediction goes through mmpose's own ``init_model`` + ``inference_bottomup`` with the
config's test pipeline. This script exists next to ``MMPoseInferencer`` because the
inferencer writes mmpose's own JSON layout rather than COCO results, exposes neither flip
nor multi-scale test, and writes its outputs in place (a failed video stays half-written).
"""
import argparse
import inspect
import json
import math
import os
import sys
import time
import uuid
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, Iterator, List, Optional, Sequence, TextIO, Tuple, Union

import cv2
import mmcv
import numpy as np
import torch
from mmengine.config import Config
from mmengine.structures import InstanceData
from mmengine.utils import ProgressBar
from mmpose.apis import inference_bottomup, init_model
from mmpose.datasets.transforms import PackPoseInputs
from mmpose.structures import PoseDataSample
from mmpose.visualization import PoseLocalVisualizer
from torch import nn

import higherhrnet_plugin  # noqa: F401  (registers the model, codec and transforms)
from higherhrnet_plugin.engine.fileio import durable_replace

DEFAULT_CONFIG = Path(__file__).parents[1] / 'configs' / 'higherhrnet_w32_coco_512.py'
IMAGE_EXTENSIONS = ('.jpg', '.jpeg', '.png', '.bmp', '.tif', '.tiff', '.webp')
VIDEO_EXTENSIONS = ('.mp4', '.avi', '.mov', '.mkv', '.webm', '.m4v', '.mpg', '.mpeg', '.wmv')
VIDEO_FOURCC = 'mp4v'
FALLBACK_FPS = 30.0  # webcams often report 0
MULTISCALE_META_KEYS = ('aug_scales', 'aug_imgs')


class DemoError(Exception):
    """A problem with the user's input or options; :func:`main` prints it and exits 1."""


@dataclass(frozen=True)
class Source:
    """What the demo reads: image files, or one video (a file path or a webcam id)."""
    images: Tuple[Path, ...] = ()
    video: Optional[Union[Path, int]] = None

    @property
    def video_stem(self) -> str:
        """Output stem of the video: the file stem, or ``webcam<id>``."""
        return f'webcam{self.video}' if isinstance(self.video, int) else self.video.stem


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    """Parse and check the command line."""
    parser = argparse.ArgumentParser(
        description='HigherHRNet demo: skeletons drawn on images / videos and COCO-format JSON.')
    parser.add_argument('input', help='image file, folder of images, video file or webcam id')
    parser.add_argument('--checkpoint', required=True, help='checkpoint file (or URL)')
    parser.add_argument('--config',
                        default=str(DEFAULT_CONFIG),
                        help='model config (default: configs/higherhrnet_w32_coco_512.py)')
    parser.add_argument('--out-dir', default='work_dirs/demo', help='output folder')
    parser.add_argument('--device',
                        default=None,
                        help='cpu, cuda:0, ... (default: cuda:0 if available)')
    parser.add_argument('--flip',
                        action=argparse.BooleanOptionalAction,
                        default=None,
                        help="flip test (default: the config's model.test_cfg.flip_test)")
    parser.add_argument('--scales',
                        type=float,
                        nargs='+',
                        default=None,
                        help='test scales, including 1, e.g. 1 0.5 2 (multi-scale test; '
                        "default: the config's)")
    parser.add_argument('--score-thr',
                        type=float,
                        default=0.1,
                        help='drop persons with a lower score (images, videos and JSON)')
    parser.add_argument('--kpt-thr',
                        type=float,
                        default=0.3,
                        help='draw keypoints and links with at least this score')
    parser.add_argument('--max-frames',
                        type=int,
                        default=None,
                        help='stop a video or webcam after this many frames')
    parser.add_argument('--radius', type=int, default=3, help='keypoint radius in pixels')
    parser.add_argument('--thickness', type=int, default=2, help='link width in pixels')
    args = parser.parse_args(argv)
    if args.scales is not None and (1.0 not in args.scales or min(args.scales) <= 0):
        parser.error(f'--scales must be positive and contain 1 (the base scale), '
                     f'got {args.scales}')
    if args.max_frames is not None and args.max_frames < 1:
        parser.error(f'--max-frames must be at least 1, got {args.max_frames}')
    args.device = args.device or ('cuda:0' if torch.cuda.is_available() else 'cpu')
    args.out_dir = Path(args.out_dir)
    return args


def resolve_source(text: str) -> Source:
    """Classify INPUT: a webcam id, a folder, a video (by extension) or an image file."""
    if text.isdigit():
        return Source(video=int(text))
    path = Path(text)
    if not path.exists():
        raise DemoError(f'input not found: {path}')
    if path.is_dir():
        images = tuple(
            sorted(p for p in path.iterdir()
                   if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS))
        if not images:
            raise DemoError(f'no images ({", ".join(IMAGE_EXTENSIONS)}) in folder {path}')
        return Source(images=images)
    if path.suffix.lower() in VIDEO_EXTENSIONS:
        return Source(video=path)
    return Source(images=(path, ))


def read_image(path: Path) -> np.ndarray:
    """(H, W, 3) BGR uint8 image, as mmpose's ``LoadImage`` would read it."""
    data = np.fromfile(path, dtype=np.uint8)
    image = cv2.imdecode(data, cv2.IMREAD_COLOR) if data.size else None
    if image is None:
        raise DemoError(f'not an image (cannot decode it): {path}')
    return image


def open_video(video: Union[Path, int]) -> Tuple[cv2.VideoCapture, np.ndarray]:
    """Open a video file or webcam and read its first frame (which proves it readable)."""
    capture = cv2.VideoCapture(video if isinstance(video, int) else str(video))
    ok, frame = capture.read() if capture.isOpened() else (False, None)
    if not ok:
        capture.release()
        what = f'webcam {video}' if isinstance(video, int) else f'video {video}'
        raise DemoError(f'cannot read {what}: no frame could be decoded')
    return capture, frame


def check_outputs(images: Sequence[Path], out_dir: Path) -> None:
    """Refuse outputs that would overwrite an input or each other (``a.jpg`` / ``a.png``)."""
    if any((out_dir / p.name).resolve() == p.resolve() for p in images):
        raise DemoError(f'--out-dir {out_dir} is the input folder: outputs would overwrite '
                        'the inputs')
    stems = [p.stem for p in images]
    clashes = sorted({s for s in stems if stems.count(s) > 1})
    if clashes:
        raise DemoError(f'images with the same stem would share a JSON file: {clashes}')


def configure_test(cfg: Config, flip: Optional[bool], scales: Optional[Sequence[float]]) -> None:
    """Set flip and multi-scale test in ``cfg`` in place (``None`` keeps the config's).

    Multi-scale test needs three settings to agree: ``HigherHRNetResize.aug_scales`` (the
    scales besides 1) in the test pipeline, ``aug_scales``/``aug_imgs`` in
    ``PackPoseInputs.meta_keys`` and ``model.test_cfg.multiscale_test``.
    """
    if flip is not None:
        cfg.model.test_cfg.flip_test = flip
    if scales is None:
        return
    pipeline = cfg.test_dataloader.dataset.pipeline
    aug_scales = [s for s in dict.fromkeys(scales) if s != 1]
    _find_transform(pipeline, 'HigherHRNetResize').aug_scales = aug_scales or None
    cfg.model.test_cfg.multiscale_test = bool(aug_scales)
    pack = _find_transform(pipeline, 'PackPoseInputs')
    default_keys = inspect.signature(PackPoseInputs).parameters['meta_keys'].default
    pack.meta_keys = tuple(
        dict.fromkeys([*pack.get('meta_keys', default_keys), *MULTISCALE_META_KEYS]))


def _find_transform(pipeline: List[dict], type_name: str) -> dict:
    """The (only) transform of ``type_name`` in a pipeline config."""
    found = [t for t in pipeline if t['type'] == type_name]
    if len(found) != 1:
        raise DemoError(f"the config's test pipeline needs exactly one {type_name} for "
                        f'--scales, found {len(found)}')
    return found[0]


def build_model(args: argparse.Namespace) -> nn.Module:
    """The model of ``--config`` with ``--checkpoint``, flip/scales applied, in eval mode."""
    for option, value in (('--config', args.config), ('--checkpoint', args.checkpoint)):
        if '://' not in value and not Path(value).is_file():
            raise DemoError(f'{option} file not found: {value}')
    cfg = Config.fromfile(args.config)
    configure_test(cfg, args.flip, args.scales)
    return init_model(cfg, args.checkpoint, device=args.device)


def build_visualizer(model: nn.Module, radius: int, thickness: int) -> PoseLocalVisualizer:
    """mmpose's visualizer with the model's dataset meta (keypoint colours, skeleton)."""
    visualizer = PoseLocalVisualizer(name='higherhrnet_demo', radius=radius, line_width=thickness)
    visualizer.set_dataset_meta(model.dataset_meta)
    return visualizer


def predict(model: nn.Module, image: np.ndarray, score_thr: float) -> PoseDataSample:
    """Persons of one BGR image with a score of at least ``score_thr``, in image pixels."""
    sample = inference_bottomup(model, image)[0]
    instances = sample.pred_instances
    sample.pred_instances = instances[instances.bbox_scores >= score_thr]
    return sample


def coco_results(instances: InstanceData, image_id: Union[int, str]) -> List[Dict]:
    """COCO keypoint results: one dict per person, ``keypoints`` as [x, y, score] * K.

    Keypoint values are rounded to 3 decimals (smaller files); the person ``score`` is kept
    exact so that ``--score-thr`` can be re-applied to the JSON.
    """
    keypoints = np.concatenate([instances.keypoints, instances.keypoint_scores[..., None]], -1)
    return [
        dict(image_id=image_id,
             category_id=1,
             keypoints=[round(float(v), 3) for v in person.reshape(-1)],
             score=float(score)) for person, score in zip(keypoints, instances.bbox_scores)
    ]


def image_id_of(path: Path) -> Union[int, str]:
    """COCO image id from a numeric file stem, otherwise the file name."""
    return int(path.stem) if path.stem.isdigit() else path.name


def draw(visualizer: PoseLocalVisualizer, image: np.ndarray, sample: PoseDataSample,
         kpt_thr: float) -> np.ndarray:
    """A BGR copy of ``image`` with the predicted skeletons drawn."""
    drawn = visualizer.add_datasample('demo',
                                      mmcv.bgr2rgb(image),
                                      sample,
                                      draw_gt=False,
                                      draw_bbox=False,
                                      kpt_thr=kpt_thr)
    return mmcv.rgb2bgr(drawn)


@contextmanager
def atomic_path(path: Path) -> Iterator[Path]:
    """Yield a hidden temporary sibling of ``path``; rename it to ``path`` on success.

    On any error (Ctrl-C included) the temporary file is deleted and ``path`` is untouched;
    a kill (SIGKILL) leaves at most the hidden temporary file, never a partial ``path``. The
    rename is durable (``fsync`` of the file and its folder), so a power loss cannot leave an
    empty ``path`` either. The suffix is kept because OpenCV picks the encoder from it.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f'.{path.stem}.{uuid.uuid4().hex[:8]}.partial{path.suffix}')
    try:
        yield tmp
        durable_replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def write_image(path: Path, image: np.ndarray) -> None:
    """Encode ``image`` (BGR) by the suffix of ``path``, atomically."""
    with atomic_path(path) as tmp:
        if not cv2.imwrite(str(tmp), image):
            raise DemoError(f'cannot write image {path}')


def write_json(path: Path, data: object) -> None:
    """Strict JSON (no NaN), atomically."""
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(data, allow_nan=False))


def run_images(model: nn.Module, visualizer: PoseLocalVisualizer, images: Sequence[Path],
               args: argparse.Namespace) -> None:
    """Draw and save every image and its COCO results; one progress step per image."""
    progress = ProgressBar(len(images))
    for path in images:
        image = read_image(path)
        sample = predict(model, image, args.score_thr)
        write_image(args.out_dir / path.name, draw(visualizer, image, sample, args.kpt_thr))
        write_json(args.out_dir / f'{path.stem}.json',
                   coco_results(sample.pred_instances, image_id_of(path)))
        progress.update()
    print()


def run_video(model: nn.Module, visualizer: PoseLocalVisualizer, source: Source,
              capture: cv2.VideoCapture, first_frame: np.ndarray,
              args: argparse.Namespace) -> None:
    """Draw every frame into ``<stem>.mp4`` and stream per-frame COCO results into
    ``<stem>.json``, then print FPS and resident memory."""
    fps = capture.get(cv2.CAP_PROP_FPS) or FALLBACK_FPS
    height, width = first_frame.shape[:2]
    stem = source.video_stem
    with atomic_path(args.out_dir / f'{stem}.mp4') as video_tmp, \
            atomic_path(args.out_dir / f'{stem}.json') as json_tmp:
        writer = cv2.VideoWriter(str(video_tmp), cv2.VideoWriter_fourcc(*VIDEO_FOURCC), fps,
                                 (width, height))
        if not writer.isOpened():
            raise DemoError(f'cannot open a {VIDEO_FOURCC} video writer for {video_tmp}')
        try:
            with open(json_tmp, 'w') as json_file:
                stats = _process_frames(model, visualizer, writer, json_file, capture,
                                        first_frame, isinstance(source.video, int), args)
        finally:
            writer.release()
    memory = ', '.join(f'{frame}: {mib:.0f}' for frame, mib in stats.rss_mib.items())
    print(f'\n{stats.frames} frames in {stats.seconds:.1f} s: '
          f'{stats.frames / stats.seconds:.2f} FPS (model, drawing and encoding); resident '
          f'memory (MiB) after frame {memory}')


@dataclass(frozen=True)
class FrameStats:
    """What a video run did: frames written, seconds taken, and the resident memory (MiB;
    NaN where the platform does not tell) after frames 1, 2, 4, 8, ... and the last one,
    which shows both the warm-up (allocator pools filling) and whether memory then stays
    flat."""
    frames: int
    seconds: float
    rss_mib: Dict[int, float]


def _process_frames(model: nn.Module, visualizer: PoseLocalVisualizer, writer: cv2.VideoWriter,
                    json_file: TextIO, capture: cv2.VideoCapture, first_frame: np.ndarray,
                    is_webcam: bool, args: argparse.Namespace) -> FrameStats:
    """Predict, draw and write frames; each frame's results are appended to ``json_file``
    (a JSON list) as they come, so memory stays flat however long the video."""
    progress = ProgressBar(_expected_frames(capture, args.max_frames))
    count, rss, start = 0, {}, time.perf_counter()
    json_file.write('[')
    try:
        for index, frame in enumerate(_frames(capture, first_frame, args.max_frames)):
            sample = predict(model, frame, args.score_thr)
            writer.write(draw(visualizer, frame, sample, args.kpt_thr))
            record = dict(frame_id=index, predictions=coco_results(sample.pred_instances, index))
            json_file.write((',\n' if index else '') + json.dumps(record, allow_nan=False))
            count = index + 1
            if count & (count - 1) == 0:  # a power of two
                rss[count] = resident_mib()
            progress.update()
    except KeyboardInterrupt:
        if not is_webcam or not count:  # Ctrl-C is how a webcam recording ends
            raise
    json_file.write(']')
    rss[count] = resident_mib()
    return FrameStats(count, max(time.perf_counter() - start, 1e-9), rss)


def resident_mib() -> float:
    """Resident memory of this process in MiB (Linux ``/proc``); NaN elsewhere."""
    try:
        pages = int(Path('/proc/self/statm').read_text().split()[1])
    except (OSError, IndexError, ValueError):
        return math.nan
    return pages * os.sysconf('SC_PAGE_SIZE') / 2**20


def _frames(capture: cv2.VideoCapture, first_frame: np.ndarray,
            max_frames: Optional[int]) -> Iterator[np.ndarray]:
    """The first frame, then the rest of the capture, at most ``max_frames`` in all."""
    frame, count = first_frame, 0
    while frame is not None and (max_frames is None or count < max_frames):
        yield frame
        count += 1
        ok, frame = capture.read()
        frame = frame if ok else None


def _expected_frames(capture: cv2.VideoCapture, max_frames: Optional[int]) -> int:
    """Frame count for the progress bar; 0 (a bare counter) when unknown, as for webcams."""
    total = int(capture.get(cv2.CAP_PROP_FRAME_COUNT))
    if total <= 0:
        return max_frames or 0
    return min(total, max_frames) if max_frames else total


def run(args: argparse.Namespace) -> None:
    """Check the input, build the model, then process the images or the video."""
    source = resolve_source(args.input)
    if source.video is None:
        check_outputs(source.images, args.out_dir)
        read_image(source.images[0])  # fail before loading the model
        model = build_model(args)
        run_images(model, build_visualizer(model, args.radius, args.thickness), source.images,
                   args)
        return
    capture, first_frame = open_video(source.video)
    try:
        model = build_model(args)
        run_video(model, build_visualizer(model, args.radius, args.thickness), source, capture,
                  first_frame, args)
    finally:
        capture.release()


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Entry point; returns the exit status (1 with a message for input problems)."""
    args = parse_args(argv)
    try:
        run(args)
    except DemoError as error:
        print(f'error: {error}', file=sys.stderr)
        return 1
    print(f'outputs in {args.out_dir}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
