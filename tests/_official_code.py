"""The official HigherHRNet code (HRNet/HigherHRNet-Human-Pose-Estimation, MIT licence), read at
run time for parity tests: from a checkout or a bare mirror named by ``HIGHERHRNET_OFFICIAL``
(default: ``../.mirror/HRNet+HigherHRNet-Human-Pose-Estimation/repo`` beside the repo). Nothing of it
is stored in this repository; tests that need it skip when it is absent."""
import importlib
import os
import subprocess
import sys
from pathlib import Path
from typing import Dict

import pytest

# Where a fetched mirror lands: ../.mirror/<owner>+<name>/repo beside this repository.
MIRRORS = Path(__file__).resolve().parents[2] / '.mirror'
OFFICIAL = Path(os.environ.get('HIGHERHRNET_OFFICIAL',
                               MIRRORS / 'HRNet+HigherHRNet-Human-Pose-Estimation' / 'repo'))


def official_source(path: str) -> str:
    """Text of ``path`` (e.g. ``lib/core/inference.py``) in the official code, or skip."""
    if not OFFICIAL.exists():
        pytest.skip(f'official HigherHRNet code not found at {OFFICIAL} '
                    '(set HIGHERHRNET_OFFICIAL to a checkout or mirror)')
    if (OFFICIAL / path).exists():
        return (OFFICIAL / path).read_text()
    return subprocess.run(['git', '-C', str(OFFICIAL), 'show', f'HEAD:{path}'],
                          check=True, capture_output=True, text=True).stdout


def import_official(root: Path, path: str, stubs: Dict[str, str]):
    """Import official ``path`` as module ``official_<stem>`` from ``root``.

    Args:
        root (Path): An empty temporary folder.
        path (str): File in the official repository.
        stubs (Dict[str, str]): Module name -> source of the few official modules it imports
            (e.g. ``{'dataset.transforms': 'FLIP_CONFIG = {...}'}``), written as packages.

    Returns:
        module: The imported module; remove ``root`` from ``sys.path`` with :func:`forget`.
    """
    for name, text in stubs.items():
        folder = root.joinpath(*name.split('.'))
        folder.mkdir(parents=True, exist_ok=True)
        for parent in [folder, *folder.relative_to(root).parents][:-1]:
            (root / parent / '__init__.py').touch()
        (folder / '__init__.py').write_text(text)
    name = f'official_{Path(path).stem}'
    (root / f'{name}.py').write_text(official_source(path))
    sys.path.insert(0, str(root))
    return importlib.import_module(name)


def forget(root: Path, module, stubs: Dict[str, str]) -> None:
    """Undo :func:`import_official`."""
    sys.path.remove(str(root))
    for name in [module.__name__, *stubs, *{s.split('.')[0] for s in stubs}]:
        sys.modules.pop(name, None)
