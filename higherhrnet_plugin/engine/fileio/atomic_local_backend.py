"""mmengine file backend for local paths whose writes are atomic and durable."""
from pathlib import Path
from typing import Union

import mmengine
from mmengine.fileio import LocalBackend, register_backend

from .atomic_files import atomic_write_bytes


@register_backend('atomic_local')
class AtomicLocalBackend(LocalBackend):
    """mmengine's :class:`~mmengine.fileio.LocalBackend` with atomic ``put`` / ``put_text``.

    mmengine's ``save_checkpoint`` serialises a checkpoint into memory and hands the bytes to
    the file backend's ``put``; the local backend opens the final path and writes into it, so
    a process killed meanwhile leaves a truncated file under the final name. Here the bytes go
    through :func:`~higherhrnet_plugin.engine.fileio.atomic_files.atomic_write_bytes` (hidden
    temporary sibling, ``fsync``, rename, ``fsync`` of the folder): the path holds either its
    previous content or the complete new one. Reads, listing and removal are the parent's.

    Select it with ``backend_args=dict(backend='atomic_local')`` wherever mmengine takes
    ``backend_args`` (``CheckpointHook``, ``save_checkpoint``, ``mmengine.fileio.put``);
    :class:`~higherhrnet_plugin.engine.hooks.AtomicCheckpointHook` does it by default.
    """

    def put(self, obj: bytes, filepath: Union[str, Path]) -> None:
        """Write ``obj`` to ``filepath`` atomically, creating its folder if needed."""
        mmengine.mkdir_or_exist(Path(filepath).parent)
        atomic_write_bytes(filepath, obj)

    def put_text(self, obj: str, filepath: Union[str, Path], encoding: str = 'utf-8') -> None:
        """Write the text ``obj`` to ``filepath`` atomically, creating its folder if needed."""
        self.put(obj.encode(encoding), filepath)
