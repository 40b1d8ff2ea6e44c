"""Batch sampler for batched HigherHRNet testing: a batch holds images of one canvas only.

The official code and mmpose 0.x test one image at a time. With batches, mmpose's data
preprocessor pads every image to the largest canvas of its batch, and the padding changes
the network's outputs near the canvas border, so predictions would depend on the batch.
Batching only images whose :class:`HigherHRNetResize` canvases are equal makes batched
predictions equal to those of batch size 1 (up to floating-point summation order).
"""
from collections import Counter
from typing import Dict, Iterator, List, Optional, Tuple, Union

from mmengine.fileio import get_local_path
from mmpose.registry import DATA_SAMPLERS
from PIL import Image
from torch.utils.data import BatchSampler, Sampler

from ..transforms import HigherHRNetResize

Canvas = Tuple[int, int]
# EXIF orientations 5-8 rotate by 90 degrees: the decoded image has w and h swapped.
_EXIF_ORIENTATION = 0x0112
_TRANSPOSED = (5, 6, 7, 8)


@DATA_SAMPLERS.register_module()
class CanvasSizeBatchSampler(BatchSampler):
    """Group the indices of ``sampler`` into batches of equal test canvas (W', H').

    Like mmdet's ``AspectRatioBatchSampler``, with one bucket per canvas instead of two
    aspect groups:

    .. code-block:: none

        for i in sampler:                       # per-rank indices (mmengine DefaultSampler)
            bucket[canvas(i)].append(i)         # canvas(i) = HigherHRNetResize canvas of image i
            full bucket (B indices) -> yield it
        then each non-empty bucket -> yield it  (drop_last: dropped), canvases in order of
                                                 their bucket's first index

    So every batch has one canvas, batches of the same canvas keep the sampler's order, and
    the order is deterministic for a deterministic sampler. ``len`` is exact:
    ``sum_c ceil(n_c / B)`` (``floor`` with ``drop_last``), n_c = indices of canvas c.

    The canvas is :meth:`HigherHRNetResize.canvas_size` of the image's (w, h). mmpose's
    bottom-up data infos hold no image size, so (w, h) is read from the image file's header
    (not its pixels), with the EXIF orientation applied as mmcv's ``'color'`` decoding of
    ``LoadImage`` does. Sizes are read on the first pass and cached. With ``batch_size=1``
    nothing is read: each index is its own batch, in the sampler's order.

    With multi-scale test (``aug_scales``) the canvases of the extra scales are functions
    of the scale-1 canvas, so they are equal within a batch too.

    Note:
        - batch size: B
        - canvas of an image at scale 1: (W', H')

    Args:
        sampler (Sampler): Index sampler whose ``dataset`` (or ``data_source``) is an
            mmengine dataset with ``get_data_info(i)['img_path']`` and ``pipeline``, such as
            the shipped configs' ``ReliableDataset`` (indices of the images it kept, the
            wrapped dataset's pipeline); in distributed tests the per-rank
            ``DefaultSampler``, as the mmengine Runner passes it.
        batch_size (int): Batch size B, at most (the dataloader's ``batch_size``).
        drop_last (bool): Drop each canvas's last batch if it has fewer than B indices.
            Defaults to ``False``.
        resize (dict | HigherHRNetResize, optional): The test resize, or its arguments
            (``input_size``, ``aug_scales``, ``rounding``). Defaults to ``None``: the
            :class:`HigherHRNetResize` of the dataset's pipeline, so that config overrides
            of the pipeline cannot leave the sampler behind. When both exist they must agree.
        backend_args (dict, optional): File backend arguments to read the image headers, as
            ``LoadImage``'s. Defaults to ``None`` (local files).
    """

    def __init__(self,
                 sampler: Sampler,
                 batch_size: int,
                 drop_last: bool = False,
                 resize: Optional[Union[dict, HigherHRNetResize]] = None,
                 backend_args: Optional[dict] = None) -> None:
        super().__init__(sampler, batch_size, drop_last)
        self.dataset = getattr(sampler, 'dataset', getattr(sampler, 'data_source', None))
        if self.dataset is None:
            raise TypeError(f'{type(sampler).__name__} has no `dataset` (or `data_source`)')
        self.resize = _find_resize(self.dataset, resize)
        self.backend_args = backend_args
        self._canvases: Dict[int, Canvas] = {}

    def __iter__(self) -> Iterator[List[int]]:
        """Yield lists of at most B dataset indices of one canvas each."""
        if self.batch_size == 1:
            yield from ([index] for index in self.sampler)
            return
        buckets: Dict[Canvas, List[int]] = {}
        for index in self.sampler:
            canvas = self.canvas(index)
            buckets.setdefault(canvas, []).append(index)
            if len(buckets[canvas]) == self.batch_size:
                yield buckets.pop(canvas)
        if not self.drop_last:
            # Leftovers of different canvases are separate batches, never merged.
            yield from buckets.values()

    def __len__(self) -> int:
        """Number of batches of one pass over ``sampler`` (exact)."""
        if self.batch_size == 1:
            return len(self.sampler)
        counts = Counter(self.canvas(index) for index in self.sampler)
        if self.drop_last:
            return sum(n // self.batch_size for n in counts.values())
        return sum(-(-n // self.batch_size) for n in counts.values())

    def canvas(self, index: int) -> Canvas:
        """Scale-1 canvas (W', H') of dataset sample ``index`` (cached)."""
        if index not in self._canvases:
            img_path = self.dataset.get_data_info(index)['img_path']
            width, height = read_image_size(img_path, self.backend_args)
            self._canvases[index] = self.resize.canvas_size(width, height)
        return self._canvases[index]


def read_image_size(img_path: str, backend_args: Optional[dict] = None) -> Tuple[int, int]:
    """(w, h) of an image as mmcv decodes it (EXIF orientation applied), from its header.

    Args:
        img_path (str): Image file path or URI.
        backend_args (dict, optional): mmengine file backend arguments.

    Returns:
        Tuple[int, int]: (w, h) in pixels.
    """
    with get_local_path(img_path, backend_args=backend_args) as local_path:
        # PIL reads the header only; pixels are decoded lazily and never here.
        with Image.open(local_path) as image:
            width, height = image.size
            orientation = image.getexif().get(_EXIF_ORIENTATION, 1)
    return (height, width) if orientation in _TRANSPOSED else (width, height)


def _find_resize(dataset, resize: Optional[Union[dict, HigherHRNetResize]]) -> HigherHRNetResize:
    """The given resize or the dataset pipeline's :class:`HigherHRNetResize`, checked equal."""
    if isinstance(resize, dict):
        resize = HigherHRNetResize(**{k: v for k, v in resize.items() if k != 'type'})
    transforms = getattr(getattr(dataset, 'pipeline', None), 'transforms', [])
    in_pipeline = [t for t in transforms if isinstance(t, HigherHRNetResize)]
    if resize is None:
        if not in_pipeline:
            raise ValueError('the dataset pipeline has no HigherHRNetResize: pass `resize`')
        return in_pipeline[0]
    if in_pipeline and _settings(in_pipeline[0]) != _settings(resize):
        raise ValueError(f'resize {resize} differs from the pipeline\'s {in_pipeline[0]}')
    return resize


def _settings(resize: HigherHRNetResize) -> tuple:
    return resize.input_size, tuple(resize.aug_scales), resize.rounding
