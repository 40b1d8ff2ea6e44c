"""Generate a small synthetic COCO person-keypoints dataset of stick figures.

The images are meant for smoke tests and for the embedded default config: a
bottom-up model learns them within minutes because every keypoint sits on a
part with its own colour (head disc, eyes, nose, ears, torso, upper arms,
forearms, hands, thighs, shins, feet). The annotations follow COCO conventions
so that ``xtcocotools.coco.COCO`` and mmpose's ``CocoDataset`` read them as
they read ``person_keypoints_val2017.json``:

- 17 COCO keypoints ``[x, y, v] * 17``; ``v=2`` visible, ``v=1`` occluded by a
  nearer figure or a random rectangle (still labelled), ``v=0`` outside the
  image (stored as ``0, 0, 0``); ``num_keypoints`` counts ``v > 0``.
- Every figure faces the camera, so the person's left side is on the image's
  right (as for a frontal person in COCO). Left and right parts share colours,
  which keeps a horizontal flip with COCO's flip indices a valid sample.
- Non-crowd persons carry a convex-hull polygon segmentation and its area.
- Some images hold a crowd region (``iscrowd=1``, one uncompressed RLE over a
  cluster of small figures) and tiny persons with ``num_keypoints=0``; the
  bottom-up dataset turns both into ``invalid_segs`` (ignored regions).

Layout written under ``--out``::

    meta.json                                   arguments; a rerun with equal ones is skipped
    annotations/person_keypoints_{train,val}.json
    images/{train,val}/<image id, 12 digits>.jpg

Example::

    python tools/make_toy_dataset.py --out data/toy --num-train 200 \\
        --num-val 40 --size 256 --seed 0

Image ``i`` of a split depends only on (seed, split, i) and the size, so
growing ``--num-train`` keeps the first images unchanged.
"""
import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import List, Optional, Sequence, Tuple

import cv2
import numpy as np

# Run as a script or loaded by path: the figure module sits beside this file.
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from toy_figures import (  # noqa: E402,F401  (re-exported for the tests)
    COLOUR_JITTER, FLIP_INDICES, KEYPOINT_NAMES, NUM_KEYPOINTS, PARTS, SKELETON, Figure, Size,
    draw_background, draw_crowd, draw_figure, draw_occluder, draw_tiny_person, figure_mask,
    jittered_palette, keypoint_visibility, label_palette, mask_bbox, mask_to_polygon,
    mask_to_rle, person_annotation, place_figure, sample_local_pose, sample_main_figure)

GENERATOR_VERSION = 1
SPLITS = ('train', 'val')
# Image ids are disjoint between splits: val ids start after this offset.
SPLIT_ID_OFFSET = {'train': 0, 'val': 1_000_000}
MAX_PERSONS = 5
MIN_SIZE, MAX_SIZE = 64, 4096

def parse_size(text: str) -> Size:
    """Parse ``'256'`` or ``'256x192'`` (width x height) into ``(w, h)``."""
    parts = text.lower().split('x')
    if len(parts) not in (1, 2) or not all(p.strip().isdigit() for p in parts):
        raise ValueError(f'size must be N or WxH with integers, got {text!r}')
    w, h = (int(parts[0]), ) * 2 if len(parts) == 1 else (int(parts[0]), int(parts[1]))
    if not (MIN_SIZE <= w <= MAX_SIZE and MIN_SIZE <= h <= MAX_SIZE):
        raise ValueError(f'width and height must lie in [{MIN_SIZE}, {MAX_SIZE}], got {w}x{h}')
    return w, h


def generate_image(rng: np.random.Generator, size: Size) -> Tuple[np.ndarray, List[dict]]:
    """Render one image and its annotations (without ``id``/``image_id``).

    Args:
        rng (np.random.Generator): Source of all randomness of this image.
        size (Tuple[int, int]): Image size (w, h).

    Returns:
        tuple: the RGB image in shape (h, w, 3), uint8, and the list of COCO annotations:
        1..5 keypoint persons (nearest last), then optional crowd and tiny persons.
    """
    w, h = size
    img = draw_background(rng, w, h)
    extra = []
    if rng.random() < 0.3:
        extra.append(draw_crowd(rng, img))
    if rng.random() < 0.3:
        extra.append(draw_tiny_person(rng, img))
    figures = [sample_main_figure(rng, w, h) for _ in range(rng.integers(1, MAX_PERSONS + 1))]
    figures.sort(key=lambda f: f.height)  # taller = nearer: drawn last, occludes the others
    label_map = np.zeros((h, w), dtype=np.uint8)
    for label, fig in enumerate(figures, start=1):
        draw_figure(img, fig, jittered_palette(rng))
        draw_figure(label_map, fig, label_palette(label))
    if rng.random() < 0.35:
        draw_occluder(rng, img, label_map)
    persons = []
    for label, fig in enumerate(figures, start=1):
        vis = keypoint_visibility(fig, label, label_map)
        persons.append(person_annotation(fig, vis, figure_mask(fig, (h, w))))
    return img, persons + extra


def image_rng(seed: int, split: str, index: int) -> np.random.Generator:
    """The generator of image ``index`` of ``split``: independent of the split's length."""
    return np.random.default_rng([seed, SPLITS.index(split), index])


def categories() -> List[dict]:
    """COCO's person category with keypoint names and the 1-based skeleton."""
    return [{
        'supercategory': 'person',
        'id': 1,
        'name': 'person',
        'keypoints': list(KEYPOINT_NAMES),
        'skeleton': [list(pair) for pair in SKELETON],
    }]


def generate_split(root: Path, split: str, num_images: int, size: Size, seed: int) -> dict:
    """Write ``images/<split>/*.jpg`` under ``root`` and return the split's COCO dict."""
    image_dir = root / 'images' / split
    image_dir.mkdir(parents=True, exist_ok=True)
    images, annotations = [], []
    for index in range(num_images):
        image_id = SPLIT_ID_OFFSET[split] + index + 1
        img, anns = generate_image(image_rng(seed, split, index), size)
        file_name = f'{image_id:012d}.jpg'
        ok = cv2.imwrite(str(image_dir / file_name), cv2.cvtColor(img, cv2.COLOR_RGB2BGR),
                         [cv2.IMWRITE_JPEG_QUALITY, 90])
        if not ok:
            raise OSError(f'could not write {image_dir / file_name}')
        images.append({
            'file_name': file_name,
            'height': size[1],
            'width': size[0],
            'id': image_id
        })
        for k, ann in enumerate(anns):
            # Fewer than 100 annotations per image (5 persons + crowd + tiny).
            annotations.append({**ann, 'image_id': image_id, 'id': image_id * 100 + k})
    return {
        'info': {
            'description': f'synthetic stick-figure persons ({split})',
            'version': str(GENERATOR_VERSION)
        },
        'licenses': [],
        'images': images,
        'annotations': annotations,
        'categories': categories(),
    }


def dataset_meta(num_train: int, num_val: int, size: Size, seed: int) -> dict:
    """The content of ``meta.json``: a rerun with an equal dict is skipped."""
    return {
        'generator': 'make_toy_dataset',
        'version': GENERATOR_VERSION,
        'num_train': num_train,
        'num_val': num_val,
        'size': list(size),
        'seed': seed
    }


def _read_meta(out: Path) -> Optional[dict]:
    try:
        return json.loads((out / 'meta.json').read_text())
    except (OSError, ValueError):
        return None


def _write_dataset(root: Path, meta: dict) -> None:
    (root / 'annotations').mkdir(parents=True)
    size = tuple(meta['size'])
    for split in SPLITS:
        coco = generate_split(root, split, meta[f'num_{split}'], size, meta['seed'])
        with open(root / 'annotations' / f'person_keypoints_{split}.json', 'w') as f:
            json.dump(coco, f)
    (root / 'meta.json').write_text(json.dumps(meta, indent=2) + '\n')


def make_toy_dataset(out: os.PathLike,
                     num_train: int = 200,
                     num_val: int = 40,
                     size: Size = (256, 256),
                     seed: int = 0,
                     force: bool = False) -> bool:
    """Generate the dataset into ``out`` unless it already holds the same one.

    The files are written to a sibling temporary folder that is renamed to ``out`` at the
    end, so an interrupted run leaves no partial dataset behind.

    Args:
        out (os.PathLike): Output folder.
        num_train (int): Number of training images, >= 1. Defaults to ``200``.
        num_val (int): Number of validation images, >= 1. Defaults to ``40``.
        size (Tuple[int, int]): Image size (w, h). Defaults to ``(256, 256)``.
        seed (int): Random seed, >= 0. Defaults to ``0``.
        force (bool): Replace ``out`` if it holds anything else. Defaults to ``False``.

    Returns:
        bool: ``True`` if the dataset was written, ``False`` if an equal one was there.
    """
    if num_train < 1 or num_val < 1:
        raise ValueError(f'need at least one image per split, got num_train={num_train}, '
                         f'num_val={num_val}')
    if seed < 0:
        raise ValueError(f'seed must be >= 0, got {seed}')
    out = Path(out)
    meta = dataset_meta(num_train, num_val, (int(size[0]), int(size[1])), seed)
    if out.exists():
        if _read_meta(out) == meta:
            return False
        if not out.is_dir() or (any(out.iterdir()) and not force):
            raise FileExistsError(f'{out} exists and holds something else than this dataset '
                                  '(no equal meta.json); pass --force to replace it')
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f'.{out.name}.partial-', dir=out.parent))
    try:
        _write_dataset(tmp, meta)
        _replace_dir(tmp, out)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return True


def _replace_dir(src: Path, dst: Path) -> None:
    """Move ``src`` to ``dst``; an existing ``dst`` is moved aside first, then removed."""
    if not dst.exists():
        src.rename(dst)
        return
    old = Path(tempfile.mkdtemp(prefix=f'.{dst.name}.old-', dir=dst.parent))
    dst.rename(old / dst.name)
    src.rename(dst)
    shutil.rmtree(old, ignore_errors=True)


def _parse_args(argv: Optional[Sequence[str]]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--out', required=True, help='output folder, e.g. data/toy')
    parser.add_argument('--num-train', type=int, default=200, help='training images (>= 1)')
    parser.add_argument('--num-val', type=int, default=40, help='validation images (>= 1)')
    parser.add_argument('--size',
                        default='256',
                        help='image size: N (square) or WxH, width first, e.g. 256x192')
    parser.add_argument('--seed', type=int, default=0, help='random seed (>= 0)')
    parser.add_argument('--force',
                        action='store_true',
                        help='replace --out if it holds a different dataset')
    return parser.parse_args(argv)


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = _parse_args(argv)
    start = time.perf_counter()
    try:
        written = make_toy_dataset(args.out, args.num_train, args.num_val, parse_size(args.size),
                                   args.seed, args.force)
    except (ValueError, FileExistsError) as e:
        print(f'error: {e}', file=sys.stderr)
        return 2
    if written:
        print(f'wrote {args.num_train} + {args.num_val} images to {args.out} in '
              f'{time.perf_counter() - start:.1f} s')
    else:
        print(f'{args.out} already holds this dataset (meta.json matches); skipped')
    return 0


if __name__ == '__main__':
    sys.exit(main())
