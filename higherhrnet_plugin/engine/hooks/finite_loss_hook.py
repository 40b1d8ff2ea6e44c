"""Stop training at the first non-finite loss, before anything is saved."""
import math
from typing import Dict, List, Optional, Sequence, Union

import torch
from mmengine.hooks import Hook
from mmpose.registry import HOOKS

DATA_BATCH = Optional[Union[dict, tuple, list]]


@HOOKS.register_module()
class FiniteLossHook(Hook):
    """Raise ``FloatingPointError`` when a loss term is NaN or infinite.

    A NaN loss makes every weight NaN at the optimizer step of the same iteration; the run
    then trains on garbage and, worse, the next periodic checkpoint overwrites the good
    ones with NaN weights (with ``max_keep_ckpts`` the good ones are even deleted). This hook
    checks the loss terms after each iteration, with a priority above every hook that
    writes (``CheckpointHook`` is ``VERY_LOW``, ``LoggerHook`` ``BELOW_NORMAL``), and stops
    the run with the iteration, every loss term and the image ids of the batch. Since the
    run stops before any later hook, nothing is written over the last good checkpoint:
    resume from it (after fixing the data or lowering the learning rate).

    The check reads the values the model already returns for logging, which mmengine's
    ``RuntimeInfoHook`` converts to Python numbers every iteration anyway, so it adds no
    device synchronisation.
    """

    priority = 'ABOVE_NORMAL'

    def after_train_iter(self,
                         runner,
                         batch_idx: int,
                         data_batch: DATA_BATCH = None,
                         outputs: Optional[Dict[str, torch.Tensor]] = None) -> None:
        """Raise if any loss term of this iteration is NaN or infinite."""
        terms = {name: _scalar(value) for name, value in (outputs or {}).items()}
        # mmengine's convention: the terms whose name contains 'loss' make up the loss.
        if all(math.isfinite(value) for name, value in terms.items() if 'loss' in name):
            return
        shown = ', '.join(f'{name}={value:.6g}' for name, value in terms.items())
        raise FloatingPointError(
            f'non-finite loss at iteration {runner.iter + 1} (epoch {runner.epoch + 1}): '
            f'{shown}; images of the batch: {batch_images(data_batch)}. Nothing was saved '
            'after the last good checkpoint: resume from it with --resume.')


def _scalar(value: Union[torch.Tensor, float]) -> float:
    return float(value.detach()) if isinstance(value, torch.Tensor) else float(value)


def batch_images(data_batch: DATA_BATCH) -> List[str]:
    """``img_id`` (and file) of every sample of a batch of packed pose inputs."""
    samples: Sequence = data_batch.get('data_samples', []) if isinstance(data_batch,
                                                                         dict) else []
    return [f'{s.metainfo.get("img_id")} ({s.metainfo.get("img_path")})' for s in samples]
