"""COCO keypoint results, the ``<stem>.json`` layout of ``tools/demo.py``, without torch."""
from pathlib import Path
from typing import Dict, List, Union

import numpy as np


def coco_results(keypoints: np.ndarray, keypoint_scores: np.ndarray, scores: np.ndarray,
                 image_id: Union[int, str]) -> List[Dict]:
    """One ``{"image_id", "category_id": 1, "keypoints": [x, y, score] * K, "score"}`` per
    person.

    Keypoint values are rounded to 3 decimals (smaller files); the person ``score`` is kept
    exact so that a score threshold can be re-applied to the JSON.

    Args:
        keypoints (np.ndarray): (N, K, 2) image pixels.
        keypoint_scores (np.ndarray): (N, K).
        scores (np.ndarray): (N, ) person scores.
        image_id (int | str): COCO image id (:func:`image_id_of`).

    Returns:
        List[Dict]: The results, in person order.
    """
    rows = np.concatenate([keypoints, keypoint_scores[..., None]], axis=-1)
    return [
        dict(image_id=image_id,
             category_id=1,
             keypoints=[round(float(v), 3) for v in person.reshape(-1)],
             score=float(score)) for person, score in zip(rows, scores)
    ]


def image_id_of(path: Path) -> Union[int, str]:
    """COCO image id from a numeric file stem (``000000000785.jpg`` -> 785), otherwise the
    file name."""
    return int(path.stem) if path.stem.isdigit() else path.name
