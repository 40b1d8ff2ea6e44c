"""Load mmengine checkpoints under torch >= 2.6 without unpickling arbitrary code.

mmengine 0.10.7 calls ``torch.load(filename, map_location=...)`` without ``weights_only``
(mmengine #1655, fixed on its unreleased main by PR #1670). Since torch 2.6 that defaults to
``weights_only=True``, which rejects the non-tensor objects mmengine itself writes into every
checkpoint (the message hub's ``HistoryBuffer``, numpy scalars and arrays in ``meta``), so
``load_from``, ``--resume`` and ``mim test --checkpoint`` all fail.

Instead of switching the safe loader off (``weights_only=False`` runs any pickled code), this
module keeps ``weights_only=True`` and allow-lists exactly the classes that mmengine, mmpose 0.x
and the official HigherHRNet code put into their checkpoints. It is registered as mmengine's
loader for local paths (the ``''`` scheme of :class:`mmengine.runner.CheckpointLoader`), which is
what the runner, ``load_from``, ``resume`` and ``load_checkpoint`` go through.

A checkpoint holding anything else fails with an error that names the rejected global. A user
who trusts such a file can set torch's own switch ``TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD=1``.
"""
import os
import os.path as osp
import pickle
from typing import Any, List, Optional, Union

import numpy as np
import torch
from mmengine.runner.checkpoint import CheckpointLoader

_TRUST_ENV = 'TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD'
_HISTORY_BUFFER_STATISTICS = ('min', 'max', 'current', 'mean')


def _numpy_globals() -> List[Any]:
    """Numpy objects needed to rebuild arrays, dtypes and scalars from a pickle."""
    # numpy moved ``core`` to ``_core`` in 2.0; pickles name whichever wrote them.
    from numpy.core import multiarray
    found = [multiarray._reconstruct, multiarray.scalar, np.ndarray, np.dtype]
    found += [type(np.dtype(c)) for c in '?bBhHiIlLqQefdgFDG']
    # Written under numpy >= 2, the same objects are named numpy._core.*.
    found += [(multiarray._reconstruct, 'numpy._core.multiarray._reconstruct'),
              (multiarray.scalar, 'numpy._core.multiarray.scalar')]
    return found


def _history_buffer_getattr(obj: Any, name: str) -> Any:
    """``getattr`` restricted to what a pickled ``HistoryBuffer`` needs.

    A ``HistoryBuffer`` pickles its statistics methods (``mean``, ``current``, ...) as
    ``getattr(HistoryBuffer, name)``; a general ``getattr`` would let a file reach any
    attribute of any allow-listed class, so only those lookups are served: the four
    built-in ones by name, because ``HistoryBuffer.__init__`` registers them in
    ``_statistics_methods`` only once a buffer exists (not yet in a process that just
    loads a checkpoint: ``init_model``, ``MMPoseInferencer``, ``tools/demo.py``), and
    custom ones once registered.
    """
    from mmengine.logging import HistoryBuffer
    if obj is HistoryBuffer and (name in _HISTORY_BUFFER_STATISTICS
                                 or name in HistoryBuffer._statistics_methods):
        return getattr(obj, name)
    raise pickle.UnpicklingError(f'refusing getattr({obj!r}, {name!r}) in a checkpoint')


def _mmengine_globals() -> List[Any]:
    """mmengine objects stored by ``Runner.save_checkpoint`` (message hub, config)."""
    from mmengine.config import ConfigDict
    from mmengine.logging import HistoryBuffer
    return [
        HistoryBuffer, ConfigDict, (_history_buffer_getattr, 'builtins.getattr'),
        (_history_buffer_getattr, '__builtin__.getattr')
    ]


def safe_globals() -> List[Any]:
    """All non-tensor globals a HigherHRNet-related checkpoint may legitimately hold."""
    return _numpy_globals() + _mmengine_globals()


def trusted_load(file: Union[str, Any],
                 map_location: Optional[Union[str, torch.device]] = None) -> Any:
    """``torch.load`` with ``weights_only=True`` and the allow-list of :func:`safe_globals`.

    Args:
        file (str | file-like): A checkpoint path or an open binary file.
        map_location (str | torch.device, optional): As in :func:`torch.load`.

    Returns:
        Any: The unpickled checkpoint (usually a dict).

    Raises:
        pickle.UnpicklingError: If the file holds an object outside the allow-list; the
            message names it and how to load a trusted file anyway.
    """
    if os.environ.get(_TRUST_ENV, '0') not in ('', '0'):
        return torch.load(file, map_location=map_location, weights_only=False)
    with torch.serialization.safe_globals(safe_globals()):
        try:
            return torch.load(file, map_location=map_location, weights_only=True)
        except pickle.UnpicklingError as err:
            raise pickle.UnpicklingError(
                f'{file} holds objects that are not plain tensors, numpy values or mmengine '
                f'log buffers, so it was not unpickled (it could run code). If you trust '
                f'this file, set {_TRUST_ENV}=1. torch said: {err}') from err


def _load_from_local(filename: str, map_location=None) -> Any:
    """Replacement for mmengine's ``load_from_local`` using :func:`trusted_load`."""
    filename = osp.expanduser(filename)
    if not osp.isfile(filename):
        raise FileNotFoundError(f'{filename} can not be found.')
    return trusted_load(filename, map_location=map_location)


def install_checkpoint_loader() -> None:
    """Register :func:`trusted_load` for local paths in mmengine's ``CheckpointLoader``.

    Idempotent; called when :mod:`higherhrnet_plugin` is imported.
    """
    CheckpointLoader.register_scheme(prefixes='', loader=_load_from_local, force=True)
