"""The fast parser with its map reading done where the maps are (a GPU), in torch.

On a GPU the network's maps (K x H x W heatmaps, K x H x W x L tags per image, ~25 MB at
704x512 with flip test) would otherwise be copied to the host and scanned there. Here the
NMS and the top-k run on the device, and only a peak table crosses to the host: for each
keypoint its ``topk`` highest positive NMS peaks (pixel, value, tags and adjusted position),
K x ``topk`` entries. The candidates of :mod:`.grouping_candidates` are the table's entries
above the detection threshold, the refine peaks of :func:`.grouping_refine.refine_peaks` are
the table itself, and the sub-pixel positions of the grouped and refined keypoints are read
from it; grouping and refine then run on the host as in :func:`.grouping_fast.parse_fast`
(:func:`.grouping_fast.parse_from_candidates`). Only ``refine_search='full'`` needs the maps
on the host, and copies them.

Same results as :func:`.grouping_fast.parse_fast`, bit for bit, on the same maps (tested on
CPU tensors): a peak is a pixel equal to the maximum of its NMS window (the official
max-pool, -inf padding: the fast parser's ">= every pixel of its window inside the map");
ties are ordered by pixel index, as there (an int64 key, value bits then reversed pixel
index, makes ``topk`` exact: positive float32 values order as their bit patterns); the
adjusted positions are the official +0.5 +-0.25 of :func:`.grouping_refine.quarter_pixel`.
Non-finite values are refused as there, with the same message: NaN or +Inf anywhere in the
heatmaps, non-finite tags of a candidate or of a refine peak.

Note:
    - batch size: B
    - keypoint number: K
    - heatmap size: (W, H)
    - tag dimension: L
    - peaks per keypoint: M = min(``topk``, H*W)
"""
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from .grouping_candidates import Candidates, float32_threshold
from .grouping_common import ParseResult, non_finite_error, resolve_keypoint_order
from .grouping_fast import check_fast_options, parse_from_candidates

__all__ = ['TensorPeaks', 'peak_table', 'parse_fast_tensors']

_LOW_BITS = (1 << 32) - 1


def peak_table(heatmaps: Tensor, tags: Tensor, nms_kernel: int, topk: int) -> Dict[str, Tensor]:
    """The ``topk`` highest positive NMS peaks of each map, on the maps' device.

    Args:
        heatmaps (Tensor): (B, K, H, W) heatmaps.
        tags (Tensor): (B, K, H, W, L) tags.
        nms_kernel (int): Odd NMS window size.
        topk (int): Peaks per keypoint.

    Returns:
        dict: on the maps' device:
        - flat: int64 (B, K, M), pixel index y * W + x, by value (descending) then pixel
        - values: float32 (B, K, M)
        - tags: float32 (B, K, M, L)
        - positions: float32 (B, K, M, 2), adjusted (x, y)
        - counts: int64 (B, K), entries that are peaks (the rest are padding)
        - refused: bool (B, ), heatmaps holding NaN or +Inf
        - heat_non_finite, tag_non_finite: int64 (B, ), non-finite values of each map
    """
    batch, num_keypoints, height, width = heatmaps.shape
    heat = heatmaps.float()
    window_max = F.max_pool2d(heat, nms_kernel, stride=1, padding=nms_kernel // 2)
    peaks = (window_max == heat) & (heat > 0)
    pixel = torch.arange(height * width, device=heat.device)
    # Positive float32 values order as their bits: one exact key, value first, then the
    # smaller pixel index first, so topk has no ties to break.
    bits = heat.view(torch.int32).to(torch.int64).flatten(2)
    keys = torch.where(peaks.flatten(2), (bits << 32) | (_LOW_BITS - pixel), -1)
    top = keys.topk(min(topk, height * width), dim=2).values
    flat = torch.where(top >= 0, _LOW_BITS - (top & _LOW_BITS), 0)
    flat_heat = heat.flatten(2)
    flat_tags = tags.float().flatten(2, 3)
    tag_dim = flat_tags.shape[-1]
    return dict(flat=flat,
                values=flat_heat.gather(2, flat),
                tags=flat_tags.gather(2, flat[..., None].expand(-1, -1, -1, tag_dim)),
                positions=_quarter_pixel(flat_heat, flat, width, height),
                counts=(top >= 0).sum(dim=2),
                refused=(heat.isnan() | (heat == float('inf'))).flatten(1).any(dim=1),
                heat_non_finite=(~heat.isfinite()).flatten(1).sum(dim=1),
                tag_non_finite=(~tags.isfinite()).flatten(1).sum(dim=1))


def _quarter_pixel(flat_heat: Tensor, flat: Tensor, width: int, height: int) -> Tensor:
    """float32 (B, K, M, 2): :func:`.grouping_refine.quarter_pixel` of every table entry."""
    y, x = flat // width, flat % width

    def heat_at(ys: Tensor, xs: Tensor) -> Tensor:
        return flat_heat.gather(2, ys * width + xs)

    right = heat_at(y, (x + 1).clamp(max=width - 1)) > heat_at(y, (x - 1).clamp(min=0))
    down = heat_at((y + 1).clamp(max=height - 1), x) > heat_at((y - 1).clamp(min=0), x)
    shift = torch.where(torch.stack([right, down], dim=-1), 0.75, 0.25).double()
    return (torch.stack([x, y], dim=-1).double() + shift).float()


class TensorPeaks:
    """:class:`.grouping_refine.PeakSource` of one image's peak table, on the host.

    Args:
        table (Dict[str, np.ndarray]): One image's entries of :func:`peak_table`, as numpy
            arrays (leading batch dimension removed).
        width (int): W.
        threshold (float): The detection threshold (>= 0).
        tag_size (int): Number of values of the image's tag map, for error messages.
        maps (callable, optional): Returns the image's heatmaps and tags as numpy arrays,
            for ``refine_search='full'``.
    """

    def __init__(self, table: Dict[str, np.ndarray], width: int, threshold: float, tag_size: int,
                 maps=None) -> None:
        self.table = table
        self.width = width
        self.tag_size = tag_size
        self._maps = maps
        counts = table['counts']
        above = table['values'] > float32_threshold(threshold)
        self.entries = [
            self._entries(k, count, int(above[k, :count].sum())) for k, count in enumerate(counts)
        ]
        self.topk = table['flat'].shape[1]
        # (k, pixel) of every entry, sorted, to find the entry of a grouped keypoint
        self._keys = np.concatenate(
            [k * np.int64(1 << 32) + table['flat'][k, :count] for k, count in enumerate(counts)])
        self._order = np.argsort(self._keys)
        self._positions = np.concatenate(
            [table['positions'][k, :count] for k, count in enumerate(counts)])

    def _entries(self, k: int, count: int, above: int) -> Tuple[Candidates, Candidates]:
        """(candidates, all peaks) of keypoint k; candidate tags are checked here."""
        peaks = Candidates(self.table['flat'][k, :count], self.table['values'][k, :count],
                           self.table['tags'][k, :count])
        candidates = Candidates(*(part[:above] for part in peaks))
        self._require_finite(candidates.tags)
        return candidates, peaks

    def _require_finite(self, tags: np.ndarray) -> None:
        if not np.isfinite(tags).all():
            raise non_finite_error(int(self.table['tag_non_finite']), self.tag_size, 'tags')

    def candidates(self) -> List[Candidates]:
        """The K candidate sets, as :func:`.grouping_candidates.find_candidates`."""
        return [candidates for candidates, _ in self.entries]

    def subpixel(self, k: np.ndarray, flat: np.ndarray) -> np.ndarray:
        """float32 (P, 2) adjusted positions of table entries (keypoint k, pixel flat)."""
        keys = k * np.int64(1 << 32) + flat
        return self._positions[self._order[np.searchsorted(self._keys, keys, sorter=self._order)]]

    def peaks(self, needed: np.ndarray) -> Dict[int, Candidates]:
        """The table's peaks of each needed keypoint (:func:`.grouping_refine.refine_peaks`)."""
        found = {}
        for k in np.nonzero(needed)[0]:
            candidates, peaks = self.entries[k]
            if len(candidates.flat) < self.topk:  # refine_peaks reads these below the threshold
                self._require_finite(peaks.tags)
            found[int(k)] = peaks
        return found

    def maps(self) -> Tuple[np.ndarray, np.ndarray]:
        """The heatmaps and tags on the host (copied now)."""
        return self._maps()


def parse_fast_tensors(heatmaps: Tensor,
                       tags: Tensor,
                       *,
                       nms_kernel: int = 5,
                       topk: int = 30,
                       detection_threshold: float = 0.1,
                       tag_threshold: float = 1.0,
                       max_num_people: int = 30,
                       adjust: bool = True,
                       refine: bool = True,
                       refine_search: str = 'peaks',
                       keypoint_order: Optional[Sequence[int]] = None) -> List[ParseResult]:
    """:func:`.grouping_fast.parse_fast` of every image of a batch, peaks found on the device.

    Args:
        heatmaps (Tensor): (B, K, H, W) heatmaps on any device.
        tags (Tensor): (B, K, H, W, L) tags on the same device.
        **options: As :func:`.grouping_fast.parse_fast`.

    Returns:
        List[tuple]: One ``(keypoints, keypoint_scores, instance_scores)`` per image.
    """
    check_fast_options(detection_threshold, refine_search)
    if heatmaps.dim() != 4 or tags.dim() != 5 or tags.shape[:4] != heatmaps.shape:
        raise ValueError(f'Expected heatmaps (B, K, H, W) and tags (B, K, H, W, L), got '
                         f'{tuple(heatmaps.shape)} and {tuple(tags.shape)}')
    _, num_keypoints, height, width = heatmaps.shape
    order = resolve_keypoint_order(keypoint_order, num_keypoints)
    with torch.no_grad():
        table = {
            name: value.cpu().numpy()
            for name, value in peak_table(heatmaps, tags, nms_kernel, topk).items()
        }
    results = []
    for index in range(len(heatmaps)):
        if table['refused'][index]:
            raise non_finite_error(int(table['heat_non_finite'][index]), heatmaps[index].numel(),
                                   'heatmaps')
        source = TensorPeaks({name: value[index] for name, value in table.items()},
                             width,
                             detection_threshold,
                             tags[index].numel(),
                             maps=lambda index=index: _host_maps(heatmaps[index], tags[index]))
        results.append(
            parse_from_candidates(source.candidates(),
                                  source,
                                  order,
                                  tag_threshold=tag_threshold,
                                  max_num_people=max_num_people,
                                  adjust=adjust,
                                  refine=refine,
                                  refine_search=refine_search))
    return results


def _host_maps(heatmaps: Tensor, tags: Tensor) -> Tuple[np.ndarray, np.ndarray]:
    return (heatmaps.detach().float().cpu().numpy(), tags.detach().float().cpu().numpy())
