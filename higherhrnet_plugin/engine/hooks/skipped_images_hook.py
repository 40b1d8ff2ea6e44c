"""Warn about, count and limit the images that ReliableDataset skipped."""
from typing import Dict, Iterable, Optional, Sequence, Tuple, Union

from mmengine.hooks import Hook
from mmpose.registry import HOOKS

DATA_BATCH = Optional[Union[dict, tuple, list]]


@HOOKS.register_module()
class SkippedImagesHook(Hook):
    """Report the unusable images skipped by ``ReliableDataset``; stop past ``max_skipped``.

    A few corrupt files in a dataset of 100k images should not end a run of days, but a
    wrong image folder (every file missing) or a failing disk should end it at once. This
    hook logs one warning per skipped file, with the reason and the running count, and
    raises ``RuntimeError`` listing every skipped file once more than ``max_skipped``
    distinct files were skipped (training and evaluation together).

    It reads what :class:`~higherhrnet_plugin.datasets.ReliableDataset` reports: in
    training the ``skipped_images`` metainfo of each batch's data samples (so it counts in
    the main process whatever the number of dataloader workers; per rank when distributed),
    before validation and test the ``bad_images`` of the dataset, checked at its start.
    Without ``ReliableDataset`` it does nothing.

    Args:
        max_skipped (int): Largest number of distinct skipped files that does not stop the
            run. Defaults to 100.
    """

    priority = 'NORMAL'

    def __init__(self, max_skipped: int = 100) -> None:
        self.max_skipped = max_skipped
        self.skipped: Dict[str, str] = {}

    def before_train_iter(self, runner, batch_idx: int, data_batch: DATA_BATCH = None) -> None:
        """Report the images skipped while loading this batch."""
        samples = data_batch.get('data_samples', []) if isinstance(data_batch, dict) else []
        found = [item for s in samples for item in s.metainfo.get('skipped_images', ())]
        self._report(runner, found, 'training')

    def before_val(self, runner) -> None:
        """Report the validation images left out when the dataset was checked."""
        self._report(runner, _bad_images(runner.val_loop.dataloader.dataset), 'validation')

    def before_test(self, runner) -> None:
        """Report the test images left out when the dataset was checked."""
        self._report(runner, _bad_images(runner.test_loop.dataloader.dataset), 'test')

    def _report(self, runner, found: Iterable[Tuple[str, str]], stage: str) -> None:
        for path, reason in found:
            if path in self.skipped:
                continue
            self.skipped[path] = reason
            runner.logger.warning(
                f'skipped image {path} in {stage}: {reason} '
                f'({len(self.skipped)} skipped so far, limit {self.max_skipped})')
        if len(self.skipped) > self.max_skipped:
            listing = '\n'.join(f'  {path}: {reason}' for path, reason in self.skipped.items())
            raise RuntimeError(f'{len(self.skipped)} images could not be loaded, more than '
                               f'max_skipped={self.max_skipped} of SkippedImagesHook:\n{listing}')


def _bad_images(dataset) -> Sequence[Tuple[str, str]]:
    return getattr(dataset, 'bad_images', ())
