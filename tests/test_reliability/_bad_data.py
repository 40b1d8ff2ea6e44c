"""Bad and unusual inputs added to a toy dataset: image files and their COCO annotations.

``add_image(root, split, name, data, size, annotations)`` writes an image file (or none, for a
missing one) into ``images/<split>/`` and registers it, with its annotations, in that split's
annotation file. The factories below give the bytes of each kind of file and the annotations of
a person, a crowd region and a person whose keypoints lie outside the image.
"""
import json
from pathlib import Path
from typing import Callable, Dict, List, Optional, Tuple

import cv2
import numpy as np

Size = Tuple[int, int]  # (w, h)


def _encode(image: np.ndarray, ext: str) -> bytes:
    ok, buffer = cv2.imencode(ext, image)
    assert ok
    return buffer.tobytes()


def _picture(size: Size, channels: int = 3, dtype=np.uint8) -> np.ndarray:
    """A horizontal gradient (compresses well), (h, w, channels) or (h, w) for one channel."""
    w, h = size
    row = np.linspace(0, np.iinfo(dtype).max, w).astype(dtype)
    image = np.ascontiguousarray(np.broadcast_to(row[None, :, None], (h, w, channels)))
    return image[..., 0] if channels == 1 else image


# name -> (file bytes or None for a missing file, the reason CheckedLoadImage gives)
BAD_FILES: Dict[str, Tuple[Optional[bytes], str]] = {
    'missing.jpg': (None, 'file not found'),
    'empty.jpg': (b'', 'empty file'),
    'garbage.jpg': (b'this is not an image' * 10, 'cannot be decoded'),
    'truncated.jpg': (_encode(_picture((128, 128)), '.jpg')[:1500], 'truncated JPEG'),
    'truncated.png': (_encode(_picture((128, 128)), '.png')[:300], 'truncated PNG'),
}

# name -> (size, file bytes): each must load as an (h, w, 3) uint8 image.
ODD_FORMATS: Dict[str, Tuple[Size, Callable[[], bytes]]] = {
    'gray.png': ((128, 96), lambda: _encode(_picture((128, 96), 1), '.png')),
    'rgba.png': ((128, 96), lambda: _encode(_picture((128, 96), 4), '.png')),
    'sixteen_bit.png': ((128, 96), lambda: _encode(_picture((128, 96), 3, np.uint16), '.png')),
    'one_pixel.png': ((1, 1), lambda: _encode(np.full((1, 1, 3), 128, np.uint8), '.png')),
    'huge_8000x6000.jpg': ((8000, 6000), lambda: _encode(_picture((8000, 6000)), '.jpg')),
}

# A standing stick figure in a 128 x 128 image: 17 COCO keypoints (x, y).
_FIGURE = [(64, 20), (66, 18), (62, 18), (68, 20), (60, 20), (72, 34), (56, 34), (76, 50),
           (52, 50), (78, 64), (50, 64), (68, 70), (60, 70), (70, 92), (58, 92), (70, 114),
           (58, 114)]


def person(size: Size, offset: Tuple[float, float] = (0, 0)) -> dict:
    """A person with all 17 keypoints visible, the figure scaled to ``size`` and shifted."""
    sx, sy = size[0] / 128, size[1] / 128
    points = [(x * sx + offset[0], y * sy + offset[1]) for x, y in _FIGURE]
    xs, ys = [p[0] for p in points], [p[1] for p in points]
    bbox = [min(xs), min(ys), max(xs) - min(xs), max(ys) - min(ys)]
    x0, y0, bw, bh = bbox
    return dict(keypoints=[v for x, y in points for v in (x, y, 2)], num_keypoints=17,
                bbox=bbox, area=bw * bh, iscrowd=0, category_id=1,
                segmentation=[[x0, y0, x0 + bw, y0, x0 + bw, y0 + bh, x0, y0 + bh]])


def outside_person(size: Size) -> dict:
    """A person whose keypoints are all labelled visible but lie right of the image."""
    return person(size, offset=(3 * size[0], 0))


def crowd(size: Size) -> dict:
    """A crowd region (``iscrowd=1``, uncompressed RLE) over the left half of the image."""
    w, h = size
    counts = [0, h * (w // 2), h * (w - w // 2)]  # column-major runs: 0s, 1s, 0s
    return dict(keypoints=[0] * 51, num_keypoints=0, bbox=[0, 0, w // 2, h], area=h * (w // 2),
                iscrowd=1, category_id=1, segmentation=dict(counts=counts, size=[h, w]))


def add_image(root: Path, split: str, name: str, data: Optional[bytes], size: Size,
              annotations: List[dict]) -> Path:
    """Write ``images/<split>/<name>`` (unless ``data`` is None) and register it.

    Returns:
        Path: The image path as the dataset sees it.
    """
    path = root / 'images' / split / name
    if data is not None:
        path.write_bytes(data)
    ann_file = root / 'annotations' / f'person_keypoints_{split}.json'
    content = json.loads(ann_file.read_text())
    image_id = max([image['id'] for image in content['images']] + [0]) + 1
    content['images'].append(dict(id=image_id, file_name=name, width=size[0], height=size[1]))
    next_id = max([a['id'] for a in content['annotations']] + [0]) + 1
    content['annotations'] += [
        dict(ann, id=next_id + i, image_id=image_id) for i, ann in enumerate(annotations)
    ]
    ann_file.write_text(json.dumps(content))
    return path


def keep_only(root: Path, split: str, names: List[str]) -> None:
    """Drop every image (and its annotations) of ``split`` but ``names``."""
    ann_file = root / 'annotations' / f'person_keypoints_{split}.json'
    content = json.loads(ann_file.read_text())
    content['images'] = [i for i in content['images'] if i['file_name'] in names]
    ids = {i['id'] for i in content['images']}
    content['annotations'] = [a for a in content['annotations'] if a['image_id'] in ids]
    ann_file.write_text(json.dumps(content))
