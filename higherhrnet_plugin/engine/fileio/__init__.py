from .atomic_files import (PARTIAL_SUFFIX, atomic_write_bytes, durable_replace, fsync_dir,
                           partial_path)
from .atomic_local_backend import AtomicLocalBackend

__all__ = [
    'AtomicLocalBackend', 'PARTIAL_SUFFIX', 'atomic_write_bytes', 'durable_replace', 'fsync_dir',
    'partial_path'
]
