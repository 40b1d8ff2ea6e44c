"""The ``atomic_local`` file backend and the atomic write it is built on."""
import os

import pytest
import torch
from mmengine.fileio import get_file_backend
from mmengine.runner import save_checkpoint

from higherhrnet_plugin.engine.fileio import AtomicLocalBackend, atomic_write_bytes, partial_path

ATOMIC = dict(backend='atomic_local')


def test_registered_for_backend_args(tmp_path):
    assert isinstance(get_file_backend(str(tmp_path), backend_args=ATOMIC), AtomicLocalBackend)


def test_put_replaces_the_file_and_leaves_nothing_else(tmp_path):
    backend = AtomicLocalBackend()
    path = tmp_path / 'new_folder' / 'file.bin'
    backend.put(b'old', path)
    backend.put(b'new', path)
    backend.put_text('text \u00e9', tmp_path / 'text.txt')
    assert path.read_bytes() == b'new'
    assert (tmp_path / 'text.txt').read_text(encoding='utf-8') == 'text \u00e9'
    assert [p.name for p in path.parent.iterdir()] == ['file.bin']


@pytest.mark.parametrize('failing', ['fsync', 'replace'])
def test_a_failed_write_keeps_the_old_content(failing, tmp_path, monkeypatch):
    """A failure after the temporary file is written (flush to disk, rename)."""
    path = tmp_path / 'file.bin'
    path.write_bytes(b'old')

    def fail(*args):
        raise OSError(f'{failing} failed')

    monkeypatch.setattr(os, failing, fail)
    with pytest.raises(OSError, match=failing):
        atomic_write_bytes(path, b'new')
    assert path.read_bytes() == b'old'
    assert not partial_path(path).exists()


def test_mmengine_save_checkpoint_through_it(tmp_path):
    path = tmp_path / 'epoch_1.pth'
    save_checkpoint({'state_dict': {'w': torch.arange(3.)}}, str(path), backend_args=ATOMIC)
    loaded = torch.load(path, weights_only=True)
    assert torch.equal(loaded['state_dict']['w'], torch.arange(3.))
    assert [p.name for p in tmp_path.iterdir()] == ['epoch_1.pth']
