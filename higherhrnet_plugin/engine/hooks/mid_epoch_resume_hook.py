"""Resume an epoch-based run from a checkpoint saved in the middle of an epoch."""
from mmengine.hooks import Hook
from mmengine.runner import EpochBasedTrainLoop
from mmpose.registry import HOOKS


@HOOKS.register_module()
class MidEpochResumeHook(Hook):
    """Make the resumed epoch skip the batches trained before the checkpoint.

    With ``CheckpointHook(by_epoch=False)`` a checkpoint can fall inside an epoch. mmengine
    0.10.7's ``EpochBasedTrainLoop`` resumes it at the recorded iteration but runs the whole
    epoch again, so the run trains more iterations than configured and repeats data. After
    resuming, this hook computes the batches of the current epoch already trained and hands
    them to the train sampler, which must be a
    :class:`~higherhrnet_plugin.datasets.samplers.ResumableSampler` (with a plain
    ``DefaultSampler`` it raises rather than train the epoch twice). It does nothing for a
    fresh run, a checkpoint at an epoch end, or an ``IterBasedTrainLoop`` (which skips
    batches itself).

    The skip is exact for mmengine's default batching (consecutive chunks of the sampler's
    order), not for a custom ``batch_sampler``.
    """

    priority = 'NORMAL'

    def before_train(self, runner) -> None:
        """After ``load_or_resume``: tell the sampler how far the current epoch got."""
        if not isinstance(runner.train_loop, EpochBasedTrainLoop):
            return
        loader = runner.train_loop.dataloader
        done = runner.iter - runner.epoch * len(loader)
        if done <= 0:
            return
        sampler = loader.batch_sampler.sampler
        if not hasattr(sampler, 'resume_at'):
            raise RuntimeError(
                f'resuming in the middle of epoch {runner.epoch + 1} (iteration {runner.iter}, '
                f'{done} of its {len(loader)} batches done) needs '
                "train_dataloader.sampler=dict(type='ResumableSampler') and a ReliableDataset; "
                f'with {type(sampler).__name__} the epoch would be trained twice')
        sampler.resume_at(runner.epoch, done * loader.batch_sampler.batch_size)
        runner.logger.info(f'resuming epoch {runner.epoch + 1} after its first {done} batches')
