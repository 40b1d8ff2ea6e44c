"""SWAHR's code (greatlog/SWAHR-HumanPose, a fork of the official HigherHRNet code), read at
run time for parity tests from a checkout or a bare mirror named by ``SWAHR_OFFICIAL`` (default:
the fetched mirror below). The repository has no licence file: nothing of it is stored here,
and tests that need it skip when it is absent."""
import os
import subprocess
import sys
import warnings
from pathlib import Path
from types import ModuleType, SimpleNamespace

import pytest

from _tools import load_module

SWAHR = Path(os.environ.get('SWAHR_OFFICIAL',
                           Path(__file__).resolve().parents[2] / '.mirror' /
                           'greatlog+SWAHR-HumanPose' / 'repo'))
# pose_higher_hrnet.py imports IPython's debugger without using it.
_UNUSED_IMPORTS = {'IPython': SimpleNamespace(embed=None)}


def load_swahr(path: str, folder: Path) -> ModuleType:
    """SWAHR's ``path`` (e.g. ``lib/core/loss.py``) as the module ``swahr_<stem>``, or skip.

    Args:
        path (str): File in the SWAHR repository; it must need only torch.
        folder (Path): A temporary folder to write the file to.

    Returns:
        ModuleType: The executed module.
    """
    if not SWAHR.exists():
        pytest.skip(f'SWAHR code not found at {SWAHR} (set SWAHR_OFFICIAL to a checkout or '
                    f'mirror of greatlog/SWAHR-HumanPose)')
    if (SWAHR / path).exists():
        text = (SWAHR / path).read_text()
    else:  # a bare mirror
        text = subprocess.run(['git', '-C', str(SWAHR), 'show', f'HEAD:{path}'], check=True,
                              capture_output=True, text=True).stdout
    file = folder / f'swahr_{Path(path).stem}.py'
    file.write_text(text)
    stubs = [name for name in _UNUSED_IMPORTS if name not in sys.modules]
    sys.modules.update({name: _UNUSED_IMPORTS[name] for name in stubs})
    try:
        with warnings.catch_warnings():  # its own `is '*'` comparison
            warnings.simplefilter('ignore', SyntaxWarning)
            return load_module(file.stem, file)
    finally:
        for name in stubs:
            del sys.modules[name]
