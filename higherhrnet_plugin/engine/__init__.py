from .fileio import AtomicLocalBackend
from .hooks import AtomicCheckpointHook, FiniteLossHook, MidEpochResumeHook, SkippedImagesHook

__all__ = [
    'AtomicLocalBackend', 'AtomicCheckpointHook', 'FiniteLossHook', 'MidEpochResumeHook',
    'SkippedImagesHook'
]
