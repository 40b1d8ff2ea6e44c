"""Write a file so that its path holds either the old or the complete new content.

The recipe (as in databases and package managers): write a hidden temporary sibling, flush
and ``fsync`` it, ``os.replace`` it onto the target (atomic on POSIX and Windows for paths on
one file system), then ``fsync`` the folder so that the rename itself survives a power loss.
A process killed at any point leaves the target untouched or complete; at worst a stale
temporary sibling (:func:`partial_path`) stays behind, which no reader takes for the target.
"""
import os
from pathlib import Path
from typing import Union

PathLike = Union[str, Path]
PARTIAL_SUFFIX = '.partial'


def partial_path(path: PathLike) -> Path:
    """The temporary sibling that :func:`atomic_write_bytes` writes ``path`` through.

    The name is fixed (``.<name>.partial``), not random, so that a later run can find and
    remove what a killed one left, and tests can find it too.
    """
    path = Path(path)
    return path.with_name(f'.{path.name}{PARTIAL_SUFFIX}')


def fsync_dir(folder: PathLike) -> None:
    """Flush a folder's entries (a rename) to disk; a no-op where folders cannot be opened."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:  # Windows cannot open folders; its renames are journaled instead
        return
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def durable_replace(tmp: PathLike, path: PathLike) -> None:
    """``fsync`` the finished file ``tmp``, rename it onto ``path`` and ``fsync`` the folder."""
    with open(tmp, 'rb') as f:
        os.fsync(f.fileno())
    os.replace(tmp, path)
    fsync_dir(Path(path).parent)


def atomic_write_bytes(path: PathLike, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically and durably (see the module docstring).

    Args:
        path (str | Path): Target file; its folder must exist.
        data (bytes): The complete new content.
    """
    tmp = partial_path(path)
    try:
        with open(tmp, 'wb') as f:
            f.write(data)
        durable_replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
