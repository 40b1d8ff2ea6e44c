from .annotation_check import annotation_problem
from .reliable_dataset import ReliableDataset
from .seeded_rng import seeded_rng

__all__ = ['ReliableDataset', 'annotation_problem', 'seeded_rng']
