"""Wall-clock helpers: per-stage accumulation and medians of repeated calls."""
import statistics
import time
from contextlib import contextmanager
from typing import Callable, Dict, Iterator, Tuple


class StageTimer:
    """Accumulates wall-clock seconds per stage name: ``with timer('grouping'): ...``."""

    def __init__(self) -> None:
        self.seconds: Dict[str, float] = {}

    @contextmanager
    def __call__(self, name: str) -> Iterator[None]:
        start = time.perf_counter()
        yield
        self.seconds[name] = self.seconds.get(name, 0.0) + time.perf_counter() - start


def median_seconds(fn: Callable[[], object],
                   repeats: int,
                   warmup: int = 1) -> Tuple[float, object]:
    """Median wall-clock seconds of ``repeats`` calls after ``warmup`` untimed ones, and the
    last call's result."""
    for _ in range(warmup):
        fn()
    times, result = [], None
    for _ in range(max(1, repeats)):
        start = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times), result
