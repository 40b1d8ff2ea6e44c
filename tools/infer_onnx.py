"""Pose estimation with an exported HigherHRNet: onnxruntime, numpy, scipy, OpenCV; no torch.

Usage::

    python tools/infer_onnx.py INPUT MODEL.onnx --out-dir DIR [--score-thr T]
        [--flip | --no-flip] [--decoder fast|reference] [--threads N]

INPUT is an image file or a folder of images; MODEL.onnx comes from ``tools/export_onnx.py``
and carries every setting (input size, flip test, normalisation, decoder) in its metadata.
For each image, ``DIR/<stem>.json`` is written as by ``tools/demo.py --out-dir DIR``: a list
of COCO results ``{"image_id", "category_id": 1, "keypoints": [x, y, score] * K, "score"}``,
``image_id`` the numeric file stem or else the file name, persons with a score of at least
``--score-thr``. Pre-processing (short side to the input size, long side to a multiple of 64,
the model's normalisation) and the back-projection to image pixels equal the eager test
pipeline's. The flip test is part of the graph: ``--flip`` / ``--no-flip`` only confirm the
file's setting (a different one needs another export). Each JSON file is written to a hidden
sibling and renamed into place; problems with the inputs exit with status 1 and a message,
keeping the files already written.
"""
import argparse
import json
import os
import sys
import uuid
from pathlib import Path
from typing import List, Optional, Sequence

from higherhrnet_plugin.deploy import DeployError, OnnxPoseEstimator, read_image
from higherhrnet_plugin.deploy.coco_results import coco_results, image_id_of

IMAGE_EXTENSIONS = ('.jpg', '.jpeg', '.png', '.bmp', '.tif', '.tiff', '.webp')


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('input', type=Path, help='image file or folder of images')
    parser.add_argument('model', type=Path, help='.onnx file from tools/export_onnx.py')
    parser.add_argument('--out-dir', type=Path, required=True, help='output folder')
    parser.add_argument('--score-thr',
                        type=float,
                        default=0.1,
                        help='drop persons with a lower score (as tools/demo.py)')
    parser.add_argument('--flip',
                        action=argparse.BooleanOptionalAction,
                        default=None,
                        help='require the file to run (or not) the flip test (default: as '
                        'exported)')
    parser.add_argument('--decoder',
                        choices=('fast', 'reference'),
                        default=None,
                        help='grouping (default: the exported config\'s)')
    parser.add_argument('--threads', type=int, default=None, help='onnxruntime threads')
    return parser.parse_args(argv)


def resolve_images(path: Path) -> List[Path]:
    """The image files of INPUT: the file itself, or a folder's images by name."""
    if not path.exists():
        raise DeployError(f'input not found: {path}')
    if not path.is_dir():
        return [path]
    images = sorted(p for p in path.iterdir()
                    if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS)
    if not images:
        raise DeployError(f'no images ({", ".join(IMAGE_EXTENSIONS)}) in folder {path}')
    stems = [p.stem for p in images]
    clashes = sorted({s for s in stems if stems.count(s) > 1})
    if clashes:
        raise DeployError(f'images with the same stem would share a JSON file: {clashes}')
    return images


def check_flip(estimator: OnnxPoseEstimator, flip: Optional[bool]) -> None:
    """Refuse a ``--flip`` / ``--no-flip`` the file was not exported with."""
    exported = estimator.settings.flip_test
    if flip is not None and flip != exported:
        wanted, option = ('with', '--flip') if flip else ('without', '--no-flip')
        raise DeployError(f'the model was exported {"with" if exported else "without"} the '
                          f'flip test; for a run {wanted} it, export again with {option}')


def write_json(path: Path, data: object) -> None:
    """Strict JSON (no NaN) through a hidden sibling renamed into place."""
    tmp = path.with_name(f'.{path.stem}.{uuid.uuid4().hex[:8]}.partial{path.suffix}')
    try:
        tmp.write_text(json.dumps(data, allow_nan=False))
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def run(args: argparse.Namespace) -> int:
    """Check INPUT and the model, then write one JSON file per image; returns the count."""
    images = resolve_images(args.input)
    estimator = OnnxPoseEstimator(args.model, args.threads, args.decoder)
    check_flip(estimator, args.flip)
    for path in images:
        image = read_image(path)  # before the output folder: a bad input creates nothing
        args.out_dir.mkdir(parents=True, exist_ok=True)
        keypoints, keypoint_scores, scores = estimator(image)
        kept = scores >= args.score_thr
        write_json(args.out_dir / f'{path.stem}.json',
                   coco_results(keypoints[kept], keypoint_scores[kept], scores[kept],
                                image_id_of(path)))
    return len(images)


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Entry point; returns the exit status (1 with a message for unusable inputs)."""
    args = parse_args(argv)
    try:
        count = run(args)
    except DeployError as error:
        print(f'error: {error}', file=sys.stderr)
        return 1
    print(f'{count} image(s): results in {args.out_dir}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
