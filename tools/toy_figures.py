"""Stick figures for :mod:`make_toy_dataset`: body model, drawing, masks and visibility.

A figure faces the camera (its left side is on the image's right), every keypoint sits on a
part with its own colour, and left and right parts share colours so that a horizontal flip
with COCO's flip indices stays a valid sample.
"""
from typing import Dict, List, NamedTuple, Optional, Sequence, Tuple

import cv2
import numpy as np

KEYPOINT_NAMES = ('nose', 'left_eye', 'right_eye', 'left_ear', 'right_ear', 'left_shoulder',
                  'right_shoulder', 'left_elbow', 'right_elbow', 'left_wrist', 'right_wrist',
                  'left_hip', 'right_hip', 'left_knee', 'right_knee', 'left_ankle', 'right_ankle')
# COCO's skeleton, 1-based as in person_keypoints_*.json.
SKELETON = ((16, 14), (14, 12), (17, 15), (15, 13), (12, 13), (6, 12), (7, 13), (6, 7), (6, 8),
            (7, 9), (8, 10), (9, 11), (2, 3), (1, 2), (1, 3), (2, 4), (3, 5), (4, 6), (5, 7))
FLIP_INDICES = (0, 2, 1, 4, 3, 6, 5, 8, 7, 10, 9, 12, 11, 14, 13, 16, 15)
NUM_KEYPOINTS = len(KEYPOINT_NAMES)

# Body proportions in units of the figure height (head top to ankles ~ 0.96), origin at the
# mid-hip, y pointing down; left = +x because the figure faces the camera.
TORSO, NECK_TO_HEAD, HEAD_R = 0.30, 0.12, 0.075
SHOULDER_HALF, HIP_HALF = 0.10, 0.06
UPPER_ARM, FOREARM, THIGH, SHIN = 0.16, 0.15, 0.23, 0.23

# Part name -> (RGB colour, size in figure heights): line thickness for limbs, radius for discs.
PARTS: Dict[str, Tuple[Tuple[int, int, int], float]] = {
    'torso': ((40, 90, 220), 0.0),
    'neck': ((255, 205, 150), 0.04),
    'head': ((255, 205, 150), HEAD_R),
    'ear': ((255, 140, 0), 0.02),
    'eye': ((20, 20, 20), 0.012),
    'nose': ((220, 30, 60), 0.014),
    'upper_arm': ((230, 50, 50), 0.045),
    'forearm': ((250, 170, 30), 0.04),
    'hand': ((255, 240, 0), 0.025),
    'thigh': ((40, 180, 60), 0.06),
    'shin': ((30, 210, 210), 0.05),
    'foot': ((150, 60, 200), 0.03),
}
COLOUR_JITTER = 20

Size = Tuple[int, int]  # (w, h), as mmpose's input_size


class Figure(NamedTuple):
    """A posed stick figure in image coordinates.

    Attributes:
        keypoints (np.ndarray): COCO keypoints in shape (17, 2), (x, y) pixels, rounded to
            integers so that labels sit exactly on the drawn pixels.
        head_centre (np.ndarray): Centre of the head disc in shape (2, ).
        height (float): Figure height in pixels (head top to ankles).
    """
    keypoints: np.ndarray
    head_centre: np.ndarray
    height: float


def _direction(angle: float, sign: float) -> np.ndarray:
    """Unit vector at ``angle`` radians from straight down, turned outwards to side ``sign``."""
    return np.array([sign * np.sin(angle), np.cos(angle)])


def sample_local_pose(rng: np.random.Generator) -> Tuple[np.ndarray, np.ndarray]:
    """Sample an upright frontal pose in figure units.

    Returns:
        tuple: keypoints in shape (17, 2) and the head centre in shape (2, ), with the
        mid-hip at the origin, y down, height ~1 and the person's left at +x.
    """
    kpts = np.zeros((NUM_KEYPOINTS, 2))
    neck = np.array([0.0, -TORSO])
    tilt = rng.normal(0.0, 0.12)
    head = neck + NECK_TO_HEAD * np.array([np.sin(tilt), -np.cos(tilt)])
    yaw = rng.uniform(-0.015, 0.015)  # nose and eyes slide sideways as the head turns
    kpts[0] = head + (yaw, 0.015)
    for side, sign in enumerate((1.0, -1.0)):  # left (index 2k+1) first, then right
        kpts[1 + side] = head + (yaw + sign * 0.028, -0.012)
        kpts[3 + side] = head + (sign * 0.062, -0.004)
        kpts[5 + side] = neck + (sign * SHOULDER_HALF, 0.0)
        upper = rng.uniform(0.15, 2.2)
        kpts[7 + side] = kpts[5 + side] + UPPER_ARM * _direction(upper, sign)
        fore = upper + rng.uniform(-0.6, 1.6)  # bent outwards (> 0) or across the body
        kpts[9 + side] = kpts[7 + side] + FOREARM * _direction(fore, sign)
        kpts[11 + side] = (sign * HIP_HALF, 0.0)
        thigh = rng.uniform(0.0, 0.4)
        kpts[13 + side] = kpts[11 + side] + THIGH * _direction(thigh, sign)
        shin = thigh + rng.uniform(-0.3, 0.1)  # knees bend outwards, ankles come back in
        kpts[15 + side] = kpts[13 + side] + SHIN * _direction(shin, sign)
    return kpts, head


def place_figure(rng: np.random.Generator, height: float, centre: Sequence[float]) -> Figure:
    """Sample a pose, rotate it slightly (|angle| <= 20 deg) and put its mid-hip at ``centre``."""
    local, head = sample_local_pose(rng)
    angle = np.deg2rad(np.clip(rng.normal(0.0, 8.0), -20.0, 20.0))
    rot = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    offset = np.asarray(centre, dtype=float)
    return Figure(np.round(local @ rot.T * height + offset), head @ rot.T * height + offset,
                  float(height))


def jittered_palette(rng: np.random.Generator) -> Dict[str, Tuple[int, ...]]:
    """Per-figure colours: the base part colours moved by up to ``COLOUR_JITTER``."""
    jitter = rng.integers(-COLOUR_JITTER, COLOUR_JITTER + 1, size=(len(PARTS), 3))
    return {
        name: tuple(int(c) for c in np.clip(np.add(colour, d), 0, 255))
        for (name, (colour, _)), d in zip(PARTS.items(), jitter)
    }


def draw_figure(canvas: np.ndarray, fig: Figure, palette: Dict[str, Sequence[int]]) -> None:
    """Draw ``fig`` in place: torso, legs, neck, head with face, then arms in front.

    ``canvas`` is an RGB image (palette of colours) or a single-channel label map (every
    palette entry the same label).
    """
    k = fig.keypoints.astype(np.int32)

    def size(part: str) -> int:
        return max(1, int(round(PARTS[part][1] * fig.height)))

    def limb(part: str, a: int, b: int) -> None:
        cv2.line(canvas, tuple(k[a]), tuple(k[b]), palette[part], size(part), cv2.LINE_8)

    def disc(part: str, p: Sequence[float]) -> None:
        centre = tuple(int(round(v)) for v in p)
        cv2.circle(canvas, centre, size(part), palette[part], -1, cv2.LINE_8)

    cv2.fillPoly(canvas, [k[[5, 6, 12, 11]]], palette['torso'], cv2.LINE_8)
    for left in (11, 12):  # hips 11/12 -> knees 13/14 -> ankles 15/16
        limb('thigh', left, left + 2)
        limb('shin', left + 2, left + 4)
        disc('foot', k[left + 4])
    limb('neck', 5, 6)
    cv2.line(canvas, tuple((k[5] + k[6]) // 2), tuple(np.round(fig.head_centre).astype(int)),
             palette['neck'], size('neck'), cv2.LINE_8)
    disc('head', fig.head_centre)
    for i in (3, 4):
        disc('ear', k[i])
    for i in (1, 2):
        disc('eye', k[i])
    disc('nose', k[0])
    for shoulder in (5, 6):  # shoulders 5/6 -> elbows 7/8 -> wrists 9/10
        limb('upper_arm', shoulder, shoulder + 2)
        limb('forearm', shoulder + 2, shoulder + 4)
        disc('hand', k[shoulder + 4])


def label_palette(label: int) -> Dict[str, int]:
    return {name: label for name in PARTS}


def figure_mask(fig: Figure, shape: Tuple[int, int]) -> np.ndarray:
    """Binary mask in ``shape`` (H, W) of the pixels ``fig`` covers inside the image."""
    mask = np.zeros(shape, dtype=np.uint8)
    draw_figure(mask, fig, label_palette(1))
    return mask


def draw_background(rng: np.random.Generator, w: int, h: int) -> np.ndarray:
    """Smooth, desaturated colour field with pixel noise and grey clutter, RGB (H, W, 3)."""
    gh, gw = rng.integers(3, 9, size=2)
    grid = rng.uniform(60, 200, size=(gh, gw, 1)) + rng.uniform(-25, 25, size=(gh, gw, 3))
    img = cv2.resize(grid.astype(np.float32), (w, h), interpolation=cv2.INTER_CUBIC)
    img += rng.normal(0.0, 6.0, size=img.shape).astype(np.float32)
    img = np.clip(img, 0, 255).astype(np.uint8)
    for _ in range(rng.integers(3, 10)):
        grey = int(rng.integers(30, 226))
        colour = tuple(int(np.clip(grey + d, 0, 255)) for d in rng.integers(-15, 16, size=3))
        p, q = rng.integers(0, (w, h), size=(2, 2))
        cv2.line(img, tuple(map(int, p)), tuple(map(int, q)), colour, int(rng.integers(1, 5)))
    return img


def mask_to_polygon(mask: np.ndarray) -> List[float]:
    """Convex hull of the mask's pixels as a flat COCO polygon ``[x1, y1, x2, y2, ...]``."""
    hull = cv2.convexHull(cv2.findNonZero(mask)).reshape(-1, 2)
    if len(hull) < 3:  # a degenerate hull (line or point): use the pixel box instead
        x, y, bw, bh = cv2.boundingRect(hull)
        hull = np.array([[x, y], [x + bw, y], [x + bw, y + bh], [x, y + bh]])
    return [float(v) for v in hull.reshape(-1)]


def mask_to_rle(mask: np.ndarray) -> Dict[str, list]:
    """Uncompressed COCO RLE (column-major run lengths, starting with a zero run).

    COCO stores crowd masks in this form, and the official HigherHRNet code passes them
    straight to ``frPyObjects``, which reads only uncompressed counts.
    """
    flat = mask.reshape(-1, order='F').astype(bool)
    changes = np.flatnonzero(flat[1:] != flat[:-1]) + 1
    counts = np.diff(np.concatenate([[0], changes, [flat.size]]))
    if flat[0]:
        counts = np.concatenate([[0], counts])
    return {'counts': [int(c) for c in counts], 'size': [int(v) for v in mask.shape]}


def mask_bbox(mask: np.ndarray) -> List[float]:
    """``[x, y, w, h]`` of the mask's pixels (pixel boxes, as ``cv2.boundingRect``)."""
    return [float(v) for v in cv2.boundingRect(cv2.findNonZero(mask))]


def keypoint_visibility(fig: Figure, label: int, label_map: np.ndarray) -> np.ndarray:
    """COCO ``v`` per keypoint, shape (17, ): 0 outside, 1 covered by another label, 2 own."""
    h, w = label_map.shape
    x, y = fig.keypoints.astype(int).T
    inside = (x >= 0) & (x < w) & (y >= 0) & (y < h)
    vis = np.zeros(NUM_KEYPOINTS, dtype=int)
    own = label_map[y[inside], x[inside]] == label
    vis[inside] = np.where(own, 2, 1)
    return vis


def sample_main_figure(rng: np.random.Generator, w: int, h: int) -> Figure:
    """A figure 25%..90% of the image height with at least 6 keypoints inside the image."""
    height = h * np.exp(rng.uniform(np.log(0.25), np.log(0.9)))
    for _ in range(50):
        centre = rng.uniform(0, w), rng.uniform(0.45 * height, h - 0.25 * height)
        fig = place_figure(rng, height, centre)
        x, y = fig.keypoints.T
        if np.count_nonzero((x >= 0) & (x < w) & (y >= 0) & (y < h)) >= 6:
            return fig
    return place_figure(rng, height, (w / 2, h / 2))


def sample_inner_figure(rng: np.random.Generator,
                         w: int,
                         h: int,
                         height: float,
                         box: Optional[Tuple[float, float, float, float]] = None) -> Figure:
    """A figure whose full extent (~0.5 height above, 0.5 below the hip) is in ``box``."""
    x0, y0, x1, y1 = box or (0.0, 0.0, float(w), float(h))
    cx = rng.uniform(x0 + 0.3 * height, max(x0 + 0.3 * height, x1 - 0.3 * height))
    cy = rng.uniform(y0 + 0.55 * height, max(y0 + 0.55 * height, y1 - 0.5 * height))
    return place_figure(rng, height, (min(cx, w - 1.0), min(cy, h - 1.0)))


def person_annotation(fig: Figure, vis: np.ndarray, mask: np.ndarray) -> dict:
    """COCO annotation (without ids) of a figure with visibility ``vis`` and pixel ``mask``."""
    kpts = np.concatenate([fig.keypoints * (vis[:, None] > 0), vis[:, None]], axis=1)
    polygon = mask_to_polygon(mask)
    area = cv2.contourArea(np.array(polygon, dtype=np.float32).reshape(-1, 2))
    return {
        'segmentation': [polygon],
        'num_keypoints': int(np.count_nonzero(vis)),
        'area': float(max(area, 1.0)),
        'iscrowd': 0,
        'keypoints': [int(v) for v in kpts.reshape(-1)],
        'bbox': mask_bbox(mask),
        'category_id': 1,
    }


def draw_crowd(rng: np.random.Generator, img: np.ndarray) -> dict:
    """Draw a cluster of 5..10 small figures; return its ``iscrowd=1`` annotation."""
    h, w = img.shape[:2]
    bw, bh = rng.uniform(0.25, 0.45) * w, rng.uniform(0.2, 0.35) * h
    x0, y0 = rng.uniform(0, w - bw), rng.uniform(0, h - bh)
    union = np.zeros((h, w), dtype=np.uint8)
    for _ in range(rng.integers(5, 11)):
        height = rng.uniform(0.08, 0.15) * h
        fig = sample_inner_figure(rng, w, h, height, (x0, y0, x0 + bw, y0 + bh))
        draw_figure(img, fig, jittered_palette(rng))
        draw_figure(union, fig, label_palette(1))
    union = cv2.dilate(union, np.ones((3, 3), np.uint8))
    return {
        'segmentation': mask_to_rle(union),
        'num_keypoints': 0,
        'area': float(np.count_nonzero(union)),
        'iscrowd': 1,
        'keypoints': [0] * (3 * NUM_KEYPOINTS),
        'bbox': mask_bbox(union),
        'category_id': 1,
    }


def draw_tiny_person(rng: np.random.Generator, img: np.ndarray) -> dict:
    """Draw a figure too small to label (5%..10% of the height): ``num_keypoints=0``."""
    h, w = img.shape[:2]
    fig = sample_inner_figure(rng, w, h, rng.uniform(0.05, 0.10) * h)
    draw_figure(img, fig, jittered_palette(rng))
    vis = np.zeros(NUM_KEYPOINTS, dtype=int)
    return person_annotation(fig, vis, figure_mask(fig, (h, w)))


def draw_occluder(rng: np.random.Generator, img: np.ndarray, label_map: np.ndarray) -> None:
    """A flat grey-ish rectangle over 15%..35% of each side, marked 255 in ``label_map``."""
    h, w = img.shape[:2]
    rw, rh = int(rng.uniform(0.15, 0.35) * w), int(rng.uniform(0.15, 0.35) * h)
    x, y = int(rng.integers(0, w - rw)), int(rng.integers(0, h - rh))
    grey = int(rng.integers(40, 216))
    colour = tuple(int(np.clip(grey + d, 0, 255)) for d in rng.integers(-20, 21, size=3))
    cv2.rectangle(img, (x, y), (x + rw - 1, y + rh - 1), colour, -1)
    cv2.rectangle(label_map, (x, y), (x + rw - 1, y + rh - 1), 255, -1)
