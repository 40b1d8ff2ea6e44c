"""Aggregated heatmaps and tags synthesised from annotated keypoints (perfect or perturbed)."""
from typing import NamedTuple, Sequence, Tuple

import numpy as np
from scipy.ndimage import distance_transform_edt


# Synthetic map variants: name -> (perturbed, tag_fill, heat_noise) of synthetic_maps. A trained
# network's heatmaps are not exactly 0 away from persons ('noisy heatmaps', std 0.02 guessed);
# 'background tags' has a tag far from every person's away from the keypoints.
SYNTHETIC_VARIANTS = {
    'clean': (False, 'nearest', 0.0),
    'perturbed': (True, 'nearest', 0.0),
    'noisy heatmaps': (True, 'nearest', 0.02),
    'background tags': (False, 'background', 0.0),
}
# Gaussian sigma of the synthetic maps in canvas pixels: the 1/2-resolution targets (sigma 2)
# resized x2 onto the canvas, as the aggregated maps of a trained model.
SYNTHETIC_SIGMA = 4.0
Size = Tuple[int, int]  # (W, H)


class Persons(NamedTuple):
    """Keypoints of N persons with K keypoints.

    - keypoints (np.ndarray): (N, K, 2) float64 (x, y)
    - visible (np.ndarray): (N, K) bool
    - bboxes (np.ndarray): (N, 4) float64 (x, y, w, h)
    """
    keypoints: np.ndarray
    visible: np.ndarray
    bboxes: np.ndarray


def load_persons(annotations: Sequence[dict], num_keypoints: int) -> Persons:
    """The persons of COCO-style annotations that have at least one labelled keypoint."""
    anns = [a for a in annotations if a.get('num_keypoints', 0) > 0 and not a.get('iscrowd', 0)]
    raw = np.array([a['keypoints'] for a in anns], np.float64).reshape(-1, num_keypoints, 3)
    bboxes = np.array([a['bbox'] for a in anns], np.float64).reshape(-1, 4)
    return Persons(raw[..., :2], raw[..., 2] > 0, bboxes)


def crowd_layout(pool: Persons, num_persons: int, canvas: Tuple[int, int]) -> Persons:
    """``num_persons`` persons of ``pool`` (cycled) on a grid filling ``canvas`` (W, H).

    The grid has about square cells; each person's extent (its bbox and its visible
    keypoints, some of which lie outside COCO's bboxes) is scaled to 90% of its cell (aspect
    kept) and centred in it. The returned bboxes are these extents.
    """
    width, height = canvas
    cols = max(1, int(np.ceil(np.sqrt(num_persons * width / height))))
    rows = int(np.ceil(num_persons / cols))
    cell = np.array([width / cols, height / rows])
    index = np.arange(num_persons) % len(pool.keypoints)
    keypoints, bboxes = pool.keypoints[index].copy(), _extents(pool)[index]
    scale = 0.9 * np.min(cell / bboxes[:, 2:], axis=1)
    origin = bboxes[:, :2] + bboxes[:, 2:] / 2  # bbox centre
    slots = np.stack([np.arange(num_persons) % cols, np.arange(num_persons) // cols], axis=1)
    target = (slots + 0.5) * cell
    keypoints = (keypoints - origin[:, None]) * scale[:, None, None] + target[:, None]
    bboxes = np.concatenate(
        [target - bboxes[:, 2:] * scale[:, None] / 2, bboxes[:, 2:] * scale[:, None]], axis=1)
    return Persons(keypoints, pool.visible[index].copy(), bboxes)


def _extents(persons: Persons) -> np.ndarray:
    """(N, 4) (x, y, w, h) boxes around each person's bbox and visible keypoints."""
    corners = []
    for keypoints, visible, (x, y, w, h) in zip(*persons):
        points = np.concatenate([keypoints[visible], [[x, y], [x + w, y + h]]])
        corners.append(np.concatenate([points.min(axis=0), points.max(axis=0)]))
    corners = np.array(corners).reshape(-1, 4)
    return np.concatenate([corners[:, :2], corners[:, 2:] - corners[:, :2]], axis=1)


def render_maps(keypoints: np.ndarray,
                visible: np.ndarray,
                canvas: Tuple[int, int],
                sigma: float = 2.0,
                tag_spacing: float = 1.0,
                tag_dim: int = 2,
                tag_fill: str = 'nearest') -> Tuple[np.ndarray, np.ndarray]:
    """Perfect aggregated maps: a Gaussian per visible keypoint, one tag per person.

    The Gaussian of a keypoint at (x, y) is sampled at pixel centres (i + 0.5, j + 0.5), the
    frame in which the decoders report ``pixel + 0.5 +- 0.25``: the peak pixel contains
    (x, y) and its larger neighbour lies on the side of (x, y), so decoding recovers it
    within 0.25 px. Persons merge by maximum. Person n's tag is ``n * tag_spacing`` on all L
    channels. In keypoint k's tag map, the pixels within ``3*sigma + 1`` px of a keypoint k
    hold the tag of the person whose Gaussian is the largest there; the other pixels hold

    - ``tag_fill='nearest'``: the tag of the person with the nearest visible keypoint (of
      any type), smooth person-wise regions as trained networks predict;
    - ``tag_fill='background'``: -1, a background tag far from every person's.

    Args:
        keypoints (np.ndarray): (N, K, 2) (x, y) on the canvas.
        visible (np.ndarray): (N, K) bool; only visible keypoints inside the canvas are drawn.
        canvas (Tuple[int, int]): (W, H).
        sigma (float): Gaussian sigma in canvas pixels. Defaults to ``2.0``.
        tag_spacing (float): Tag difference of consecutive persons. Defaults to ``1.0``.
        tag_dim (int): L. Defaults to ``2`` (flip test).
        tag_fill (str): ``'nearest'`` or ``'background'``, see above. Defaults to
            ``'nearest'``.

    Returns:
        tuple:
        - heatmaps (np.ndarray): float32 (K, H, W)
        - tags (np.ndarray): float32 (K, H, W, L)
    """
    width, height = canvas
    num_keypoints = keypoints.shape[1]
    heatmaps = np.zeros((num_keypoints, height, width), np.float32)
    owners = np.full((num_keypoints, height, width), -1, np.int64)
    radius = int(np.ceil(3 * sigma)) + 1
    inside = visible & np.all((keypoints >= 0) & (keypoints < (width, height)), axis=-1)
    for person, k in zip(*np.nonzero(inside)):
        x, y = keypoints[person, k]
        x0, x1 = max(0, int(x) - radius), min(width, int(x) + radius + 1)
        y0, y1 = max(0, int(y) - radius), min(height, int(y) + radius + 1)
        gx = np.exp(-(np.arange(x0, x1) + 0.5 - x)**2 / (2 * sigma**2))
        gy = np.exp(-(np.arange(y0, y1) + 0.5 - y)**2 / (2 * sigma**2))
        patch = (gy[:, None] * gx[None]).astype(np.float32)
        window = heatmaps[k, y0:y1, x0:x1]
        larger = patch > window
        window[larger] = patch[larger]
        owners[k, y0:y1, x0:x1][larger] = person
    fill = _nearest_person(keypoints, inside, canvas) if tag_fill == 'nearest' else -1
    owners = np.where(owners >= 0, owners, fill)
    tag_values = np.where(owners >= 0, owners * tag_spacing, -1.0).astype(np.float32)
    return heatmaps, np.repeat(tag_values[..., None], tag_dim, axis=-1)


def _nearest_person(keypoints: np.ndarray, inside: np.ndarray, canvas: Size) -> np.ndarray:
    """(H, W) index of the person owning the nearest drawn keypoint; -1 if none is drawn."""
    width, height = canvas
    person_map = np.full((height, width), -1, np.int64)
    persons, ks = np.nonzero(inside)
    if len(persons) == 0:
        return person_map
    xs, ys = keypoints[persons, ks].astype(np.int64).T
    person_map[ys, xs] = persons
    _, (rows, cols) = distance_transform_edt(person_map < 0, return_indices=True)
    return person_map[rows, cols]


def perturb(keypoints: np.ndarray,
            visible: np.ndarray,
            rng: np.random.Generator,
            jitter: int = 1,
            missing: float = 0.1) -> Tuple[np.ndarray, np.ndarray]:
    """Move keypoints by integers in [-jitter, jitter] px and drop a ``missing`` fraction."""
    moved = keypoints + rng.integers(-jitter, jitter + 1, size=keypoints.shape)
    kept = visible & (rng.random(visible.shape) >= missing)
    return moved, kept


def add_noise(maps: np.ndarray, rng: np.random.Generator, std: float) -> np.ndarray:
    """Maps plus i.i.d. Gaussian noise of ``std`` (every pixel and channel), float32."""
    return (maps + rng.normal(0.0, std, size=maps.shape)).astype(np.float32)


def synthetic_maps(keypoints: np.ndarray,
                   visible: np.ndarray,
                   canvas: Tuple[int, int],
                   perturbed: bool,
                   rng: np.random.Generator,
                   sigma: float = 2.0,
                   tag_fill: str = 'nearest',
                   heat_noise: float = 0.0) -> Tuple[np.ndarray, np.ndarray]:
    """:func:`render_maps` of (perturbed) keypoints, (noisy) tags and heatmaps.

    ``perturbed``: :func:`perturb` the keypoints (jitter 1 px, 10% missing) and add noise of
    std 0.1 to the tags; ``heat_noise`` > 0: add noise of that std to the heatmaps.
    """
    if perturbed:
        keypoints, visible = perturb(keypoints, visible, rng)
    heatmaps, tags = render_maps(keypoints, visible, canvas, sigma, tag_fill=tag_fill)
    if perturbed:
        tags = add_noise(tags, rng, 0.1)
    if heat_noise > 0:
        heatmaps = add_noise(heatmaps, rng, heat_noise)
    return heatmaps, tags


def image_to_canvas(points: np.ndarray, size: Tuple[int, int], center: np.ndarray,
                    scale: np.ndarray) -> np.ndarray:
    """Inverse of :func:`canvas_to_image`: ``(p - c) * W' / s_x + (W', H') / 2``."""
    size = np.asarray(size, np.float64)
    return (points - center) * size / scale + size / 2


def canvas_to_image(points: np.ndarray, size: Tuple[int, int], center: np.ndarray,
                    scale: np.ndarray) -> np.ndarray:
    """mmpose's back-projection ``p / input_size * input_scale + input_center - scale / 2``."""
    size = np.asarray(size, np.float64)
    return points / size * scale + center - 0.5 * scale
