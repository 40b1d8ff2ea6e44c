"""DefaultSampler that can start in the middle of an epoch and tells the dataset the epoch."""
from typing import Iterator, Tuple

from mmengine.dataset import DefaultSampler
from mmpose.registry import DATA_SAMPLERS

from ..dataset_wrappers import ReliableDataset


@DATA_SAMPLERS.register_module()
class ResumableSampler(DefaultSampler):
    """mmengine's ``DefaultSampler`` yielding ``(epoch, index)`` keys, resumable mid-epoch.

    Two things mmengine's ``EpochBasedTrainLoop`` lacks to resume from a checkpoint saved in
    the middle of an epoch (``CheckpointHook(by_epoch=False)``):

    - it runs the resumed epoch again from its first batch, so the run trains more
      iterations than configured, on data it has seen; :meth:`resume_at` (called by
      :class:`~higherhrnet_plugin.engine.hooks.MidEpochResumeHook`) makes the first
      :meth:`__iter__` of that epoch skip the samples already trained, without loading them;
    - the augmentation of a sample depends on the history of the loading worker; the
      ``(epoch, index)`` keys let :class:`~higherhrnet_plugin.datasets.ReliableDataset`
      (required as the dataset) seed each sample on its own.

    The order is ``DefaultSampler``'s (``shuffle``, ``seed``, ``round_up``, per rank).

    Args:
        dataset (ReliableDataset): The dataset.
        **kwargs: ``DefaultSampler``'s arguments (``shuffle``, ``seed``, ``round_up``).
    """

    def __init__(self, dataset, **kwargs) -> None:
        if not isinstance(dataset, ReliableDataset):
            raise TypeError('ResumableSampler yields (epoch, index) keys, which only '
                            f'ReliableDataset understands; wrap the {type(dataset).__name__} '
                            "in dict(type='ReliableDataset', dataset=...)")
        super().__init__(dataset, **kwargs)
        self._resume = (0, 0)

    def resume_at(self, epoch: int, num_done: int) -> None:
        """Skip the first ``num_done`` samples (of this rank) of epoch ``epoch``."""
        self._resume = (epoch, num_done)

    def __iter__(self) -> Iterator[Tuple[int, int]]:
        """``(epoch, index)`` for this rank's indices of the epoch not yet trained."""
        indices = list(super().__iter__())[self._num_skipped():]
        return iter([(self.epoch, index) for index in indices])

    def __len__(self) -> int:
        return super().__len__() - self._num_skipped()

    def _num_skipped(self) -> int:
        epoch, num_done = self._resume
        return num_done if self.epoch == epoch else 0
