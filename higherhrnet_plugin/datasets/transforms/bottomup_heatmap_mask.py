"""Heatmap mask of the bottom-up training pipeline that also masks crowd regions.

Follows the official code (HRNet/HigherHRNet-Human-Pose-Estimation,
``lib/dataset/COCOKeypoints.py`` ``get_mask``, MIT licence): the ignored region is the union of
the RLE masks of crowd objects and the polygons of persons without keypoints.
"""
from typing import List, Sequence, Tuple, Union

import numpy as np
import xtcocotools.mask as cocomask
from mmpose.datasets.transforms import BottomupGetHeatmapMask
from mmpose.registry import TRANSFORMS

# One COCO ``segmentation``: polygons ``[[x1, y1, x2, y2, ...], ...]``, an RLE dict
# ``{'counts': list | str | bytes, 'size': [h, w]}``, or ``None`` (e.g. CrowdPose, which has
# no segmentations; mmpose stores the key anyway).
Segmentation = Union[Sequence[Sequence[float]], dict, None]


@TRANSFORMS.register_module()
class BottomupHeatmapMask(BottomupGetHeatmapMask):
    """Heatmap mask that also ignores crowd RLEs, which mmpose 1.3.2's parent silently drops.

    The parent rasterises only polygon segmentations and silently drops RLE dicts, which is how
    COCO stores every ``iscrowd=1`` region. This subclass also rasterises RLEs, uncompressed
    (``counts`` a list of run lengths, as in COCO's json; converted with ``frPyObjects``) and
    compressed (``counts`` a str or bytes, used as is). The rest is the parent's: the valid mask
    ``m < 0.5`` is warped with ``warp_mat`` to ``input_size`` (bilinear, border 0 = ignored),
    flipped with the image, resized bilinearly to each heatmap level and binarised with ``> 0.5``.

    Note:
        - image size: (h, w) = ``img_shape``, the original image
        - model input size: (W_in, H_in) = ``input_size``
        - heatmap size of level i: (H_i, W_i)

    Differences from the official code:
        - The official code warps the original-size mask straight to each output resolution;
          mmpose warps it to the input size, then resizes it to each level. Both binarise at
          0.5, so they differ only on pixels cut by a region border (sub-pixel shifts).
        - Which objects are ignored is decided by mmpose's ``CocoDataset`` (``invalid_segs``):
          crowds and persons with ``num_keypoints == 0`` as in the official code, plus the rare
          persons whose clipped bbox is empty or whose keypoint coordinates are all <= 0.
        - A ``None`` or empty segmentation is skipped (the official code would raise).

    Required Keys:

        - img_shape: (h, w)
        - input_size: (W_in, H_in)
        - invalid_segs (optional): list of :data:`Segmentation` of the ignored objects
        - warp_mat (optional): (2, 3) affine matrix from the image to the model input
        - flip (optional), flip_direction (optional)
        - heatmaps (optional): array (K, H, W) or a list of arrays (K, H_i, W_i)

    Added Keys:

        - heatmap_mask: bool array, True = supervised: (H, W) for an array ``heatmaps``, a list
          of (H_i, W_i) for a list, otherwise (H_in, W_in) with ``warp_mat`` or (h, w)
          without. With ``get_invalid=True`` True marks the ignored pixels instead.

    Args:
        get_invalid (bool): Return the ignored region instead of the valid one. Defaults to
            ``False``.
    """

    def _segs_to_mask(self, segs: Sequence[Segmentation],
                      img_shape: Tuple[int, int]) -> np.ndarray:
        """Union of the segmentations ``segs`` as a uint8 array (h, w), 1 = object."""
        h, w = img_shape[:2]
        rles = [rle for seg in segs for rle in _seg_to_rles(seg, h, w)]
        if not rles:
            return np.zeros((h, w), dtype=np.uint8)
        return cocomask.decode(cocomask.merge(rles))


def _seg_to_rles(seg: Segmentation, h: int, w: int) -> List[dict]:
    """Compressed RLEs of one segmentation, each of size (h, w)."""
    if seg is None or (isinstance(seg, (list, tuple)) and len(seg) == 0):
        return []  # frPyObjects raises on an empty polygon list
    if isinstance(seg, (list, tuple)):
        return cocomask.frPyObjects(list(seg), h, w)
    if not isinstance(seg, dict) or 'counts' not in seg or 'size' not in seg:
        raise TypeError(f'expected polygons, an RLE dict or None, got {seg!r:.80}')
    # An RLE carries its own size: frPyObjects ignores (h, w) for it, and merge() returns an
    # empty RLE on a size mismatch, which would silently drop the whole mask.
    if list(seg['size']) != [h, w]:
        raise ValueError(f'RLE size {list(seg["size"])} differs from the image (h, w) = {[h, w]}')
    if isinstance(seg['counts'], (list, tuple)):
        return [cocomask.frPyObjects(seg, h, w)]
    return [seg]
