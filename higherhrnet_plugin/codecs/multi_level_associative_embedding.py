"""Multi-resolution associative-embedding codec of HigherHRNet.

Targets follow the official HigherHRNet code (HRNet/HigherHRNet-Human-Pose-Estimation,
``lib/dataset/target_generators``, MIT licence); see :mod:`.utils.heatmap_targets`.
"""
from numbers import Integral, Real
from typing import List, Optional, Sequence, Tuple, Union

import numpy as np
from mmpose.codecs.base import BaseKeypointCodec
from mmpose.registry import KEYPOINT_CODECS
from torch import Tensor

from .utils.heatmap_targets import (gaussian_kernel, keypoint_cells, multi_person_heatmaps,
                                    tag_indices)
from .utils.grouping_common import resolve_keypoint_order
from .utils.grouping_device import parse_fast_tensors
from .utils.grouping_fast import REFINE_SEARCHES, parse_fast
from .utils.grouping_reference import parse_reference

ArrayOrTensor = Union[np.ndarray, Tensor]
Instances = Tuple[np.ndarray, np.ndarray, np.ndarray]

_PARSERS = dict(fast=parse_fast, reference=parse_reference)


@KEYPOINT_CODECS.register_module()
class MultiLevelAssociativeEmbedding(BaseKeypointCodec):
    r"""Encode persons as Gaussian heatmaps at several resolutions plus AE tag indices at one.

    This is the target of `HigherHRNet`_: one heatmap per keypoint at every level (1/4 and
    1/2 of the input for the official recipe) and, at ``tag_level`` only, the flat positions
    where the associative-embedding tags of each person are read. Decoding groups keypoints by
    tag with the official ``HeatmapParser`` semantics (``decode_mode='reference'``) or a
    vectorised equivalent (``'fast'``). The fast parser's refine searches a missing keypoint
    among its ``decode_topk`` highest NMS peaks by default (``decode_refine_search='peaks'``,
    cheap; it may fill a missing keypoint differently from the official full-map search,
    never changing grouping or instance scores); ``'full'`` is the exact official search.

    Note:
        - instance number: N (N' = min(N, ``max_num_people``))
        - keypoint number: K
        - resolution (level) number: R; level l has size (W_l, H_l) = ``heatmap_sizes[l]``
        - tag dimension: L (1, or 2 after flip-test concatenation)
        - input size: (W_in, H_in) = ``input_size``; s_l = W_l / W_in is level l's scale

    Encoded:
        - heatmaps (List[np.ndarray]): One float32 array (K, H_l, W_l) per level
        - keypoint_indices (np.ndarray): (N', K, 2) int64; a valid keypoint is
          ``[k*H*W + y*W + x, 1]`` with (W, H) the tag level's size, anything else ``[0, 0]``
        - keypoint_weights (np.ndarray): (N', K) float32, 1 where the index is valid

    Targets are built as the official ``HeatmapGenerator``/``JointsGenerator``: coordinates
    scaled by s_l and truncated by ``int()`` (toward zero, so -0.5 lands in cell 0), keypoints
    with visibility > 0 whose cell lies on the map get a 15x15 (``6*sigma + 3``) Gaussian
    patch of peak 1, clipped at the border, persons merged by maximum. Differences from the
    official code:

        - keypoint ``k`` stays in slot ``k`` of its index row (official packs the valid ones to
          the front); the AE loss only reads the set of valid entries, so it is unchanged;
        - persons beyond ``max_num_people`` get no tag indices (their heatmaps are still
          drawn); the official code raises ``IndexError`` there;
        - ``keypoints_visible`` from mmpose is in [0, 1] instead of COCO's {0, 1, 2}; > 0
          means visible in both.

    Flip: mmpose's ``RandomFlip`` mirrors keypoints at input resolution, x' = W_in - 1 - x,
    which is ``W_l - s_l - s_l*x`` at level l. The official code mirrors each level's
    coordinates, ``W_l - 1 - s_l*x``: flipped samples' targets sit one level pixel instead
    of s_l further left (``1 - s_l`` = 0.75 px more at 1/4, 0.5 px at 1/2), the bias UDP
    later removed. ``flip_bias=True`` reproduces it by shifting the scaled x of flipped
    samples by ``-(1 - s_l)`` (y for vertical flips, both for diagonal ones), so targets equal
    the official ones up to float rounding. ``flip_bias=False`` keeps mmpose's mirror, for
    which flipping commutes with encoding.

    Args:
        input_size (Tuple[int, int]): Input image size (W, H). Defaults to ``(512, 512)``.
        heatmap_sizes (Sequence[Tuple[int, int]]): Heatmap size (W, H) of each level, lowest
            resolution first as the head outputs them. Defaults to ``((128, 128), (256, 256))``.
        sigma (float): Gaussian sigma in heatmap pixels, the same at every level.
            Defaults to ``2.0``.
        tag_level (int): Level whose tag map the keypoint indices point into.
            Defaults to ``0``.
        max_num_people (int): Persons that get tag indices. Defaults to ``30``.
        flip_bias (bool): Reproduce the official flip bias, see above. Defaults to ``True``.
        decode_mode (str): ``'fast'`` or ``'reference'`` parser. Defaults to ``'fast'``.
        decode_nms_kernel (int): Odd max-pool kernel of the peak NMS. Defaults to ``5``.
        decode_topk (int): Candidates per keypoint. Defaults to ``30``.
        decode_keypoint_thr (float): Heatmap value a candidate must exceed; >= 0 with
            ``decode_mode='fast'``. Defaults to ``0.1``.
        decode_tag_thr (float): Largest tag distance for joining a group. Defaults to ``1.0``.
        decode_max_instances (int): Groups a new keypoint is matched against; the official
            parser caps this list at 30. Defaults to ``30``.
        decode_adjust (bool): Quarter-pixel shift toward the higher neighbour and +0.5.
            Defaults to ``True``.
        decode_refine (bool): Fill missing keypoints from the tag maps. Defaults to ``True``.
        decode_refine_search (str): Refine search of the ``'fast'`` parser: ``'peaks'``
            (the missing keypoint's top-k NMS peaks only) or ``'full'`` (whole map, exactly
            official). The ``'reference'`` parser always searches the whole map.
            Defaults to ``'peaks'``.
        decode_keypoint_order (Sequence[int], optional): Grouping order of the keypoints.
            ``None`` gives the official order: the first K entries of the COCO order where they
            form a permutation (K = 17; CrowdPose K = 14), else index order.
            Defaults to ``None``.

    .. _`HigherHRNet`: https://arxiv.org/abs/1908.10357
    """

    auxiliary_encode_keys = {'flip', 'flip_direction'}

    # A codec's tables replace PackPoseInputs' defaults, which would drop keypoint_indices.
    label_mapping_table = dict(keypoint_indices='keypoint_indices',
                               keypoint_weights='keypoint_weights')
    field_mapping_table = dict(heatmaps='heatmaps', heatmap_mask='heatmap_mask')
    # Same as PackPoseInputs' default (tested), so declaring it changes nothing today.
    instance_mapping_table = dict(bbox='bboxes',
                                  bbox_score='bbox_scores',
                                  keypoints='keypoints',
                                  keypoints_cam='keypoints_cam',
                                  keypoints_visible='keypoints_visible',
                                  bbox_scale='bbox_scales',
                                  head_size='head_size')

    def __init__(self,
                 input_size: Tuple[int, int] = (512, 512),
                 heatmap_sizes: Sequence[Tuple[int, int]] = ((128, 128), (256, 256)),
                 sigma: float = 2.0,
                 tag_level: int = 0,
                 max_num_people: int = 30,
                 flip_bias: bool = True,
                 decode_mode: str = 'fast',
                 decode_nms_kernel: int = 5,
                 decode_topk: int = 30,
                 decode_keypoint_thr: float = 0.1,
                 decode_tag_thr: float = 1.0,
                 decode_max_instances: int = 30,
                 decode_adjust: bool = True,
                 decode_refine: bool = True,
                 decode_refine_search: str = 'peaks',
                 decode_keypoint_order: Optional[Sequence[int]] = None) -> None:
        super().__init__()
        self.input_size = _size_pair(input_size, 'input_size')
        if isinstance(heatmap_sizes, (str, bytes)) or len(heatmap_sizes) == 0:
            raise ValueError(f'heatmap_sizes must be a non-empty list of (w, h), '
                             f'got {heatmap_sizes!r}')
        self.heatmap_sizes = tuple(
            _size_pair(size, f'heatmap_sizes[{i}]') for i, size in enumerate(heatmap_sizes))
        self.sigma = _positive_number(sigma, 'sigma')
        self.tag_level = _integer(tag_level, 'tag_level', 0, len(self.heatmap_sizes) - 1)
        self.max_num_people = _integer(max_num_people, 'max_num_people', 1)
        self.flip_bias = _boolean(flip_bias, 'flip_bias')
        if decode_mode not in _PARSERS:
            raise ValueError(f'decode_mode must be one of {sorted(_PARSERS)}, got {decode_mode!r}')
        self.decode_mode = decode_mode
        self.decode_nms_kernel = _integer(decode_nms_kernel, 'decode_nms_kernel', 1)
        if self.decode_nms_kernel % 2 == 0:
            raise ValueError(f'decode_nms_kernel must be odd, got {decode_nms_kernel}')
        self.decode_topk = _integer(decode_topk, 'decode_topk', 1)
        self.decode_keypoint_thr = _number(decode_keypoint_thr, 'decode_keypoint_thr')
        if decode_mode == 'fast' and self.decode_keypoint_thr < 0:
            # The fast parser visits only pixels above the threshold; below 0 that would be
            # every pixel of the map, which it does not support.
            raise ValueError(f"decode_keypoint_thr must be >= 0 with decode_mode='fast', got "
                             f"{decode_keypoint_thr!r} (decode_mode='reference' accepts it)")
        self.decode_tag_thr = _positive_number(decode_tag_thr, 'decode_tag_thr')
        self.decode_max_instances = _integer(decode_max_instances, 'decode_max_instances', 1)
        self.decode_adjust = _boolean(decode_adjust, 'decode_adjust')
        self.decode_refine = _boolean(decode_refine, 'decode_refine')
        if decode_refine_search not in REFINE_SEARCHES:
            raise ValueError(f'decode_refine_search must be one of {REFINE_SEARCHES}, '
                             f'got {decode_refine_search!r}')
        self.decode_refine_search = decode_refine_search
        self.decode_keypoint_order = _keypoint_order(decode_keypoint_order)
        self.kernel = gaussian_kernel(self.sigma)

    def encode(self,
               keypoints: np.ndarray,
               keypoints_visible: Optional[np.ndarray] = None,
               flip: Optional[bool] = None,
               flip_direction: Optional[str] = None) -> dict:
        """Encode the persons of one image.

        Args:
            keypoints (np.ndarray): Coordinates in input-image pixels, in shape (N, K, 2).
            keypoints_visible (np.ndarray, optional): Visibility in shape (N, K); > 0 means
                visible. ``None`` means all visible.
            flip (bool, optional): Whether ``RandomFlip`` flipped the sample.
            flip_direction (str, optional): ``RandomFlip``'s direction; ``None`` with
                ``flip=True`` means horizontal.

        Returns:
            dict: ``heatmaps``, ``keypoint_indices`` and ``keypoint_weights``, see the class
            docstring.
        """
        keypoints = np.asarray(keypoints, dtype=np.float64)[..., :2]
        if keypoints.ndim != 3:
            raise ValueError(f'keypoints must be (N, K, 2), got shape {keypoints.shape}')
        if keypoints_visible is None:
            visible = np.ones(keypoints.shape[:2], dtype=bool)
        else:
            visible = np.asarray(keypoints_visible).reshape(keypoints.shape[:2]) > 0

        levels = [
            self._valid_cells(keypoints, visible, heatmap_size, flip, flip_direction)
            for heatmap_size in self.heatmap_sizes
        ]
        heatmaps = [
            multi_person_heatmaps(cells, valid, heatmap_size, self.kernel, self.sigma)
            for (cells, valid), heatmap_size in zip(levels, self.heatmap_sizes)
        ]
        cells, valid = levels[self.tag_level]
        kept = slice(0, self.max_num_people)
        keypoint_indices = tag_indices(cells[kept], valid[kept],
                                       self.heatmap_sizes[self.tag_level])
        keypoint_weights = valid[kept].astype(np.float32)

        return dict(heatmaps=heatmaps,
                    keypoint_indices=keypoint_indices,
                    keypoint_weights=keypoint_weights)

    def decode(self, heatmaps: ArrayOrTensor, tags: ArrayOrTensor) -> Instances:
        """Group the keypoints of one image.

        Args:
            heatmaps (np.ndarray | Tensor): Heatmaps in shape (K, H, W).
            tags (np.ndarray | Tensor): Tags in shape (K, H, W, L), on the same grid.

        Returns:
            tuple:
            - keypoints (np.ndarray): (N, K, 2) float32, in the maps' pixel frame with the
              official +0.5 and quarter-pixel adjustment
            - keypoint_scores (np.ndarray): (N, K) float32 heatmap values
            - instance_scores (np.ndarray): (N,) float32 mean keypoint score
        """
        if isinstance(heatmaps, Tensor):
            heatmaps = heatmaps.detach().cpu()
        if isinstance(tags, Tensor):
            tags = tags.detach().cpu()
        options = self.parser_options(heatmaps.shape[0])
        return _PARSERS[self.decode_mode](heatmaps, tags, **options)

    def parser_options(self, num_keypoints: int) -> dict:
        """Keyword arguments of the ``decode_mode`` parser for maps of K keypoints.

        What :meth:`decode` passes; the ONNX export stores them with the model.

        Args:
            num_keypoints (int): Number of keypoints K of the maps to decode.

        Returns:
            dict: ``nms_kernel``, ``topk``, ``detection_threshold``, ``tag_threshold``,
            ``max_num_people``, ``adjust``, ``refine``, ``keypoint_order`` and, for
            ``'fast'``, ``refine_search``.
        """
        options = dict(nms_kernel=self.decode_nms_kernel,
                       topk=self.decode_topk,
                       detection_threshold=self.decode_keypoint_thr,
                       tag_threshold=self.decode_tag_thr,
                       max_num_people=self.decode_max_instances,
                       adjust=self.decode_adjust,
                       refine=self.decode_refine,
                       keypoint_order=self.grouping_order(num_keypoints))
        if self.decode_mode == 'fast':  # the reference parser has only the full search
            options['refine_search'] = self.decode_refine_search
        return options

    def batch_decode(self, batch_heatmaps: Tensor, batch_tags: Tensor) -> List[Instances]:
        """Group the keypoints of every image of a batch.

        Args:
            batch_heatmaps (Tensor): Heatmaps in shape (B, K, H, W).
            batch_tags (Tensor): Tags in shape (B, K, H, W, L).

        Returns:
            List[tuple]: One ``(keypoints, keypoint_scores, instance_scores)`` per image,
            as :meth:`decode`. With ``decode_mode='fast'`` and maps on an accelerator, NMS
            and top-k run there and only the peak table is copied to the host
            (:func:`.utils.grouping_device.parse_fast_tensors`, same results).
        """
        if batch_heatmaps.shape[0] != batch_tags.shape[0]:
            raise ValueError(f'batch sizes differ: heatmaps {tuple(batch_heatmaps.shape)}, '
                             f'tags {tuple(batch_tags.shape)}')
        if self.decode_mode == 'fast' and _on_device(batch_heatmaps):
            # NMS and top-k where the maps are; only the peak table crosses to the host.
            return parse_fast_tensors(batch_heatmaps, batch_tags,
                                      **self.parser_options(batch_heatmaps.shape[1]))
        return [self.decode(heatmaps, tags) for heatmaps, tags in zip(batch_heatmaps, batch_tags)]

    def _valid_cells(self, keypoints: np.ndarray, visible: np.ndarray,
                     heatmap_size: Tuple[int, int], flip: Optional[bool],
                     flip_direction: Optional[str]) -> Tuple[np.ndarray, np.ndarray]:
        """Integer cells (N, K, 2) of the keypoints at one level and their validity (N, K).

        Input-image coordinates are scaled by s_l and, for flipped samples with ``flip_bias``,
        shifted by ``-(1 - s_l)`` along the mirrored axes (see the class docstring).
        """
        scale = np.asarray(heatmap_size, np.float64) / np.asarray(self.input_size, np.float64)
        level_keypoints = keypoints * scale
        if flip and self.flip_bias:
            axes = _flipped_axes(flip_direction)
            level_keypoints[..., axes] -= 1 - scale[axes]
        cells, on_map = keypoint_cells(level_keypoints, heatmap_size)
        return cells, visible & on_map

    def grouping_order(self, num_keypoints: int) -> Tuple[int, ...]:
        """The keypoint grouping order for K keypoints (official default), checked against K.

        Args:
            num_keypoints (int): Number of keypoints K of the maps to decode.

        Returns:
            Tuple[int, ...]: ``decode_keypoint_order``, or the official order for K.
        """
        return resolve_keypoint_order(self.decode_keypoint_order, num_keypoints)


def _on_device(maps: ArrayOrTensor) -> bool:
    """Whether ``maps`` is a tensor on an accelerator (the CPU path reads numpy arrays)."""
    return isinstance(maps, Tensor) and maps.device.type != 'cpu'


def _flipped_axes(flip_direction: Optional[str]) -> List[int]:
    """Coordinate axes a ``RandomFlip`` direction mirrors (x = 0, y = 1)."""
    axes = {None: [0], 'horizontal': [0], 'vertical': [1], 'diagonal': [0, 1]}
    if flip_direction not in axes:
        raise ValueError(f'unknown flip_direction {flip_direction!r}')
    return axes[flip_direction]


def _size_pair(size: Sequence[int], name: str) -> Tuple[int, int]:
    """Check a (w, h) pair of positive integers."""
    if (isinstance(size, (str, bytes)) or not isinstance(size, Sequence) or len(size) != 2 or
            not all(isinstance(v, Integral) and not isinstance(v, bool) and v > 0 for v in size)):
        raise ValueError(f'{name} must be a (w, h) pair of positive integers, got {size!r}')
    return int(size[0]), int(size[1])


def _integer(value: int, name: str, low: int, high: Optional[int] = None) -> int:
    """Check an integer within [low, high]."""
    if (not isinstance(value, Integral) or isinstance(value, bool) or value < low
            or (high is not None and value > high)):
        bounds = f'>= {low}' if high is None else f'in [{low}, {high}]'
        raise ValueError(f'{name} must be an integer {bounds}, got {value!r}')
    return int(value)


def _number(value: float, name: str) -> float:
    """Check a finite real number."""
    if not isinstance(value, Real) or isinstance(value, bool) or not np.isfinite(value):
        raise ValueError(f'{name} must be a finite number, got {value!r}')
    return float(value)


def _positive_number(value: float, name: str) -> float:
    """Check a finite real number > 0."""
    if _number(value, name) <= 0:
        raise ValueError(f'{name} must be > 0, got {value!r}')
    return float(value)


def _boolean(value: bool, name: str) -> bool:
    """Check a bool (configs sometimes carry 0/1 or strings by mistake)."""
    if not isinstance(value, (bool, np.bool_)):
        raise ValueError(f'{name} must be a bool, got {value!r}')
    return bool(value)


def _keypoint_order(order: Optional[Sequence[int]]) -> Optional[Tuple[int, ...]]:
    """Check a grouping order: distinct non-negative integers (checked against K at decode)."""
    if order is None:
        return None
    if (isinstance(order, (str, bytes)) or not isinstance(order, Sequence) or
            not all(isinstance(k, Integral) and not isinstance(k, bool) and k >= 0 for k in order)
            or len(set(order)) != len(order)):
        raise ValueError(f'decode_keypoint_order must be distinct non-negative integers, '
                         f'got {order!r}')
    return tuple(int(k) for k in order)
