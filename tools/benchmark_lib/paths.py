"""Paths of the repository and of the shared sample data the benchmark reads."""
from pathlib import Path


REPO_ROOT = Path(__file__).resolve().parents[2]
SHARED_DATA = REPO_ROOT / '..' / 'shared' / 'data'
