"""The tiny variant of the toy config that the reliability tests train, and how to run it.

Import it after putting ``tests/`` on ``sys.path`` (it uses ``_data``).

``tiny_config(data_root, work_dir)`` is ``configs/toy/higherhrnet_toy_synthetic.py`` at input
128 on CPU (one torch thread), with the plugin's reliability parts as the config ships them
(the datasets wrapped in ``ReliableDataset``, ``CheckedLoadImage`` in both pipelines,
``ResumableSampler`` for training, ``AtomicCheckpointHook``, deterministic mode), checkpoints
every 3 iterations (so that they fall inside epochs). With 8 training images and batch 2 an
epoch is 4 iterations.
"""
import os
import signal
import subprocess
from pathlib import Path
from typing import Any, Dict, Iterator, List, Optional

import torch
from mmengine.config import Config

from _data import (CONFIG_DIR, cpu_overrides, data_overrides, input_size_overrides, mim_env,
                   toy_folder)

TOY_CONFIG = CONFIG_DIR / 'toy' / 'higherhrnet_toy_synthetic.py'
SIZE = 128
NUM_TRAIN = 8
BATCH = 2
ITERS_PER_EPOCH = NUM_TRAIN // BATCH
CHECKPOINT_INTERVAL = 3


def make_data(root: Path, num_train: int = NUM_TRAIN, num_val: int = 2) -> Path:
    """The toy dataset generator's images and annotations (size 128) in ``root``."""
    return toy_folder(root, num_train=num_train, num_val=num_val, size=SIZE)


def tiny_config(data_root: Path, work_dir: Path, max_epochs: int = 3, max_skipped: int = 100,
                size: int = SIZE, **overrides: Any) -> Config:
    """The tiny toy config (see the module docstring) with ``SkippedImagesHook``'s limit
    ``max_skipped`` and input ``size``; ``overrides`` are dotted keys."""
    cfg = Config.fromfile(str(TOY_CONFIG))
    cfg.merge_from_dict({
        **cpu_overrides(BATCH),
        **data_overrides(cfg, data_root),
        **input_size_overrides(cfg, size),
        'work_dir': str(work_dir),
        'train_cfg.max_epochs': max_epochs,
        'train_cfg.val_interval': max_epochs,
        'default_hooks.logger.interval': 1,
        'default_hooks.checkpoint': dict(interval=CHECKPOINT_INTERVAL, by_epoch=False,
                                         max_keep_ckpts=2, save_best=None),
    })
    for hook in cfg.custom_hooks:
        if hook['type'] == 'SkippedImagesHook':
            hook['max_skipped'] = max_skipped
    cfg.merge_from_dict(overrides)
    return cfg


def dump(cfg: Config, path: Path) -> Path:
    """Write ``cfg`` as a config file (for ``mim train``)."""
    cfg.dump(str(path))
    return path


def state_dict(checkpoint: Path) -> Dict[str, torch.Tensor]:
    """The model weights of a checkpoint file."""
    return torch.load(checkpoint, map_location='cpu', weights_only=False)['state_dict']


class Training:
    """``mim train mmpose CONFIG`` in its own process group, read line by line.

    Use as a context manager; on exit the whole group (mim and its python child) is killed
    if still running.
    """

    def __init__(self, config: Path, *args: str) -> None:
        self.process = subprocess.Popen(['mim', 'train', 'mmpose', str(config), *args],
                                        env=mim_env(),
                                        stdout=subprocess.PIPE,
                                        stderr=subprocess.STDOUT,
                                        text=True,
                                        start_new_session=True)
        self.log: List[str] = []

    def __enter__(self) -> 'Training':
        return self

    def __exit__(self, *exc) -> None:
        if self.process.poll() is None:
            self.kill()
        self.process.stdout.close()

    def lines(self) -> Iterator[str]:
        """The output lines as they come (kept in ``log``)."""
        for line in self.process.stdout:
            self.log.append(line)
            yield line

    def wait_for(self, text: str) -> str:
        """Read until a line containing ``text``; fail if the process ends first."""
        for line in self.lines():
            if text in line:
                return line
        raise AssertionError(f'{text!r} never appeared:\n{self.tail()}')

    def kill(self) -> None:
        """SIGKILL to the whole process group, then reap mim."""
        os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait()

    def finish(self, timeout: float = 300) -> str:
        """Read to the end; return the log, failing if the run failed."""
        for _ in self.lines():
            pass
        assert self.process.wait(timeout) == 0, self.tail()
        return ''.join(self.log)

    def tail(self, chars: int = 6000) -> str:
        return ''.join(self.log)[-chars:]


def last_checkpoint(work_dir: Path) -> Optional[Path]:
    """The checkpoint ``last_checkpoint`` names, or ``None``."""
    pointer = work_dir / 'last_checkpoint'
    return Path(pointer.read_text().strip()) if pointer.exists() else None
