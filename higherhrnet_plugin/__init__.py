"""HigherHRNet for mmpose 1.x.

Importing this package (``custom_imports`` in a config does it) registers the backbone
presets, head, loss, codec, transforms, samplers, dataset wrapper and hooks into mmpose's own
registries and the ``atomic_local`` file backend into mmengine's, and installs
two fixes for mmengine 0.10.7 (see :mod:`.compat`): checkpoint loading under torch >= 2.6,
and the ``pytorch`` launcher on CPU-only machines (gloo).
"""
from .version import __version__

try:
    import torch  # noqa: F401
except ImportError:
    # A deployment without torch (onnxruntime + numpy) imports only the torch-free parts:
    # higherhrnet_plugin.deploy, .structures and .codecs.utils.grouping_*.
    __all__ = ['__version__']
else:
    from .compat import install_checkpoint_loader, install_cpu_distributed

    install_checkpoint_loader()
    install_cpu_distributed()

    from . import codecs, datasets, engine, models  # noqa: F401  (registration side effects)

    __all__ = ['__version__', 'install_checkpoint_loader', 'install_cpu_distributed']
