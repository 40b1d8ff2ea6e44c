from .canvas_size_batch_sampler import CanvasSizeBatchSampler

__all__ = ['CanvasSizeBatchSampler']
