"""HigherHRNet for mmpose 1.x.

Importing this package (``custom_imports`` in a config does it) registers the backbone
presets, head, loss, codec and transforms into mmpose's own registries, and installs the
checkpoint-loading fix for mmengine 0.10.7 under torch >= 2.6 (see :mod:`.compat`).
"""
from .compat import install_checkpoint_loader
from .version import __version__

install_checkpoint_loader()

from . import codecs, datasets, models  # noqa: E402,F401  (registration side effects)

__all__ = ['__version__', 'install_checkpoint_loader']
