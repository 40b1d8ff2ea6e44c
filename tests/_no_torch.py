"""Run Python code in a subprocess where ``import torch`` fails, as on a deployment machine.

A meta-path finder placed first refuses ``torch`` and its submodules; everything else imports
as usual, so anything that needs torch (mmengine, mmcv, mmpose) fails too.
"""
import subprocess
import sys
from pathlib import Path
from typing import Sequence

REPO = Path(__file__).resolve().parents[1]

_BLOCK = '''
import sys

class _NoTorch:
    def find_spec(self, name, path=None, target=None):
        if name == 'torch' or name.startswith('torch.'):
            raise ImportError(f'torch is blocked in this process ({name})')
        return None

sys.meta_path.insert(0, _NoTorch())
'''


def run_without_torch(code: str, args: Sequence[str] = (),
                      timeout: float = 300) -> subprocess.CompletedProcess:
    """Run ``code`` (``sys.argv[1:]`` = ``args``) with torch blocked, from the repository root."""
    return subprocess.run([sys.executable, '-c', _BLOCK + code, *args],
                          cwd=REPO,
                          capture_output=True,
                          text=True,
                          timeout=timeout)
