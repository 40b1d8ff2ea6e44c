"""SIGKILL a real ``mim train`` and ``--resume`` it: the final weights equal an uninterrupted run.

The tiny toy config (``_tiny.py``): 3 epochs of 4 iterations, a checkpoint every 3 iterations
(3, 6, 9 fall inside epochs; 12 is the last), one persistent dataloader worker as in the shipped
configs. Kill points are found by watching the run (its log, the checkpoint writer blocked on a
pipe), never by sleeping. Weights are compared bit for bit (``torch.equal``): on CPU with one
thread every operation is deterministic, and ``ReliableDataset`` + ``ResumableSampler`` make each
sample's augmentation independent of the worker's history.
"""
import os
import select
import sys
from pathlib import Path

import pytest
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from _tiny_toy import (CHECKPOINT_INTERVAL, ITERS_PER_EPOCH, Training, dump,  # noqa: E402
                       last_checkpoint, make_data, state_dict, tiny_config)

from higherhrnet_plugin.engine.fileio import partial_path  # noqa: E402

MAX_EPOCHS = 3
LAST_ITER = MAX_EPOCHS * ITERS_PER_EPOCH
# One persistent worker, as the shipped configs; no validation (it changes no weight).
OVERRIDES = {'train_dataloader.num_workers': 1, 'train_dataloader.persistent_workers': True,
             'val_cfg': None, 'val_dataloader': None, 'val_evaluator': None}


@pytest.fixture(scope='module')
def config(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp('kill_resume')
    cfg = tiny_config(make_data(root / 'data'), root / 'unused', MAX_EPOCHS, **OVERRIDES)
    return dump(cfg, root / 'tiny_toy.py')


@pytest.fixture(scope='module')
def uninterrupted(config, tmp_path_factory):
    """Final weights of the run that nothing interrupts."""
    work_dir = tmp_path_factory.mktemp('uninterrupted')
    with Training(config, '--work-dir', str(work_dir)) as run:
        run.finish()
    return state_dict(work_dir / f'iter_{LAST_ITER}.pth')


def resume(config: Path, work_dir: Path) -> str:
    with Training(config, '--work-dir', str(work_dir), '--resume') as run:
        return run.finish()


def assert_equal_weights(found, expected) -> None:
    assert found.keys() == expected.keys()
    different = [k for k in expected if not torch.equal(found[k], expected[k])]
    assert not different, f'{len(different)} tensors differ, e.g. {different[:3]}'


def test_sigkill_mid_epoch_then_resume(config, uninterrupted, tmp_path):
    work_dir = tmp_path / 'work'
    with Training(config, '--work-dir', str(work_dir)) as run:
        # Iteration 7 is logged: checkpoint 6 (inside epoch 2) is complete, 9 not yet begun.
        run.wait_for('Epoch(train) [2][3/4]')
        run.kill()
    checkpoint = last_checkpoint(work_dir)
    done = int(checkpoint.stem.split('_')[1])
    assert done % CHECKPOINT_INTERVAL == 0 and done >= 6
    epoch, batches = divmod(done, ITERS_PER_EPOCH)

    log = resume(config, work_dir)

    assert f'resumed epoch: {epoch}, iter: {done}' in log
    if batches:  # the usual case: 6 = epoch 2 after 2 of its 4 batches
        assert f'resuming epoch {epoch + 1} after its first {batches} batches' in log
    trained = log.count('Epoch(train) [')
    assert trained == LAST_ITER - done  # no iteration twice, none left out
    assert_equal_weights(state_dict(work_dir / f'iter_{LAST_ITER}.pth'), uninterrupted)


def test_sigkill_during_checkpoint_write(config, uninterrupted, tmp_path):
    """The write of checkpoint 9 is stopped half-way (the file is a pipe nobody reads), then
    the process is killed: checkpoint 6 stays the last one, and resuming from it ends equal."""
    work_dir = tmp_path / 'work'
    target = work_dir / 'iter_9.pth'
    with Training(config, '--work-dir', str(work_dir)) as run:
        # After the first iteration: the hook's start-up clean-up of leftovers has run.
        run.wait_for('Epoch(train) [1][1/4]')
        os.mkfifo(partial_path(target))
        reader = os.open(partial_path(target), os.O_RDONLY | os.O_NONBLOCK)
        try:
            # Readable = the writer opened the temporary file and wrote the first 64 KiB; the
            # rest of the 16 MB cannot fit into the pipe, so it is blocked inside the write.
            assert select.select([reader], [], [], 240)[0], run.tail()
            assert os.read(reader, 2) == b'PK'  # torch.save's zip header
            run.kill()
        finally:
            os.close(reader)
    assert not target.exists()
    assert last_checkpoint(work_dir) == work_dir / 'iter_6.pth'
    assert state_dict(work_dir / 'iter_6.pth')  # complete: it loads

    log = resume(config, work_dir)

    assert 'resumed epoch: 1, iter: 6' in log
    assert not partial_path(target).exists()  # the leftover pipe was cleaned up
    assert_equal_weights(state_dict(work_dir / f'iter_{LAST_ITER}.pth'), uninterrupted)
