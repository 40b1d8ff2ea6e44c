from .canvas_size_batch_sampler import CanvasSizeBatchSampler
from .resumable_sampler import ResumableSampler

__all__ = ['CanvasSizeBatchSampler', 'ResumableSampler']
