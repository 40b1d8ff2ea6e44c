from .atomic_checkpoint_hook import AtomicCheckpointHook
from .finite_loss_hook import FiniteLossHook
from .mid_epoch_resume_hook import MidEpochResumeHook
from .skipped_images_hook import SkippedImagesHook

__all__ = ['AtomicCheckpointHook', 'FiniteLossHook', 'MidEpochResumeHook', 'SkippedImagesHook']
