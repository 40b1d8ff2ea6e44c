"""mmengine's CheckpointHook with checkpoints that a kill can never leave half-written."""
import os.path as osp
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator, List

from mmengine.dist import is_main_process
from mmengine.fileio import LocalBackend
from mmengine.hooks import CheckpointHook
from mmpose.registry import HOOKS

from ..fileio import PARTIAL_SUFFIX, atomic_write_bytes

LAST_CHECKPOINT = 'last_checkpoint'


@HOOKS.register_module()
class AtomicCheckpointHook(CheckpointHook):
    """:class:`~mmengine.hooks.CheckpointHook` whose files are complete or absent.

    mmengine 0.10.7's hook has three windows in which a killed run (SIGKILL, OOM killer,
    pre-empted node, power loss) loses its checkpoints:

    1. ``torch.save`` goes straight to the final name: a kill during the write leaves a
       truncated ``epoch_N.pth``;
    2. ``last_checkpoint`` (what ``--resume`` without a path reads) is rewritten in place: a
       kill there leaves it empty and ``--resume`` fails;
    3. with ``max_keep_ckpts`` or ``save_best`` the outdated file is deleted *before* the new
       one is written: a kill in between leaves no checkpoint (or no best one) at all.

    Here every checkpoint (periodic, last, best) is written through the ``atomic_local``
    backend (:class:`~higherhrnet_plugin.engine.fileio.AtomicLocalBackend`: temporary file,
    ``fsync``, rename, ``fsync`` of the folder), ``last_checkpoint`` is replaced the same way
    only after the checkpoint is complete, and outdated checkpoints are deleted only after
    that. So at every instant ``last_checkpoint`` names a complete file. Everything else
    (intervals, ``max_keep_ckpts``, ``save_best``, resume bookkeeping in the message hub) is
    the parent's; a run may briefly hold ``max_keep_ckpts + 1`` checkpoints. Temporary files
    that a killed run left (``.<name>.partial``) are deleted when training starts.

    The atomic backend is used when neither ``backend_args`` nor ``file_client_args`` is
    given and ``out_dir`` is local; given arguments (e.g. a remote ``out_dir``) are used as
    they are, with that backend's own guarantees.

    Args:
        *args: :class:`~mmengine.hooks.CheckpointHook`'s arguments.
        **kwargs: :class:`~mmengine.hooks.CheckpointHook`'s keyword arguments.
    """

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        local = self.out_dir is None or '://' not in str(self.out_dir)
        if self.backend_args is None and self.file_client_args is None and local:
            self.backend_args = dict(backend='atomic_local')

    def before_train(self, runner) -> None:
        """Resolve the output folder (the parent's), then drop a killed run's leftovers."""
        super().before_train(runner)
        if is_main_process() and isinstance(self.file_backend, LocalBackend):
            for folder in {Path(self.out_dir), Path(runner.work_dir)}:
                for leftover in folder.glob(f'.*{PARTIAL_SUFFIX}'):
                    leftover.unlink()

    def _save_checkpoint_with_step(self, runner, step: int, meta: dict) -> None:
        """Write checkpoint ``step``, then point ``last_checkpoint`` at it, then prune.

        The parent's steps in a safe order; the bookkeeping (``keep_ckpt_ids``,
        ``last_ckpt`` in the message hub, saved with the checkpoint) is unchanged.
        """
        outdated = self._rotate_kept_steps(runner, step)
        filename = self.filename_tmpl.format(step)
        self.last_ckpt = self.file_backend.join_path(self.out_dir, filename)
        runner.message_hub.update_info('last_ckpt', self.last_ckpt)
        runner.save_checkpoint(
            self.out_dir,
            filename,
            self.file_client_args,
            save_optimizer=self.save_optimizer,
            save_param_scheduler=self.save_param_scheduler,
            meta=meta,
            by_epoch=self.by_epoch,
            backend_args=self.backend_args,
            **self.args)
        if not is_main_process():
            return
        atomic_write_bytes(osp.join(runner.work_dir, LAST_CHECKPOINT), self.last_ckpt.encode())
        for path in outdated:
            self._remove(path)

    def _save_best_checkpoint(self, runner, metrics: dict) -> None:
        """The parent's, with the previous best deleted only after the new one is written."""
        with self._deferred_removals() as removals:
            super()._save_best_checkpoint(runner, metrics)
        current = {self.last_ckpt, getattr(self, 'best_ckpt_path', None)}
        current.update(getattr(self, 'best_ckpt_path_dict', {}).values())
        for path in removals:
            if path not in current:  # a rerun validation at the same step writes the same name
                self._remove(path)

    def _rotate_kept_steps(self, runner, step: int) -> List[str]:
        """Record ``step`` among the kept checkpoints; return the paths that fall out."""
        kept = self.keep_ckpt_ids if self.max_keep_ckpts > 0 else None
        if kept is None or (kept and kept[-1] == step):  # best + periodic at one step
            return []
        outdated = []
        if len(kept) == self.max_keep_ckpts:
            oldest = self.filename_tmpl.format(kept.popleft())
            outdated.append(self.file_backend.join_path(self.out_dir, oldest))
        kept.append(step)
        runner.message_hub.update_info('keep_ckpt_ids', list(kept))
        return outdated if is_main_process() else []

    def _remove(self, path: str) -> None:
        """Delete a checkpoint file (or a DeepSpeed checkpoint folder) if it exists."""
        if self.file_backend.isfile(path):
            self.file_backend.remove(path)
        elif self.file_backend.isdir(path):
            self.file_backend.rmtree(path)

    @contextmanager
    def _deferred_removals(self) -> Iterator[List[str]]:
        """Collect, instead of performing, the parent's deletions inside the block.

        Yields the list of collected paths; the caller deletes them after the block, so a
        failure inside it (or a kill) keeps every old file.
        """
        backend, removals = self.file_backend, []
        self.file_backend = _RecordingRemovals(backend, removals)
        try:
            yield removals
        finally:
            self.file_backend = backend


class _RecordingRemovals:
    """A file backend proxy whose ``remove`` / ``rmtree`` only record the path."""

    def __init__(self, backend, removals: List[str]) -> None:
        self._backend, self._removals = backend, removals

    def __getattr__(self, name: str):
        return getattr(self._backend, name)

    def remove(self, path: str) -> None:
        self._removals.append(path)

    rmtree = remove
