"""Random number generators seeded for one sample, restored afterwards."""
import random
from contextlib import contextmanager
from typing import Iterator

import numpy as np
import torch


@contextmanager
def seeded_rng(*entropy: int) -> Iterator[None]:
    """Seed Python's, numpy's and torch's (CPU) global generators from ``entropy`` inside.

    The random transforms of mmpose and mmcv draw from these global generators; seeding them
    per sample makes the augmentation of a sample a function of ``entropy`` alone, whatever
    ran before in the process (other samples, another worker, a resumed run). The previous
    states are restored on exit, so code outside sees no change.

    Args:
        *entropy (int): Non-negative integers, e.g. (seed, epoch, index).
    """
    seed = int(np.random.SeedSequence(entropy).generate_state(1)[0])
    numpy_state, python_state = np.random.get_state(), random.getstate()
    with torch.random.fork_rng(devices=[]):
        np.random.seed(seed)
        random.seed(seed)
        torch.manual_seed(seed)
        try:
            yield
        finally:
            np.random.set_state(numpy_state)
            random.setstate(python_state)
