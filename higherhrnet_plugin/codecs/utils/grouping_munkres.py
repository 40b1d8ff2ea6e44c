"""The ``munkres`` package's assignment, step for step, compiled.

The official parser minimises its cost matrix with ``Munkres().compute`` of the pure-Python
``munkres`` package (1.1.4). Where several assignments are optimal its answer is whichever one
its steps reach, so only the same steps give the same answer. :func:`munkres_pairs` runs them:
the same reductions in the same float64 operations (each element gets the same additions and
subtractions in the same order), the same zero search order, the same stars, primes and
covers, compiled (numba) instead of interpreted; its result is the package's (pinned by tests
on matrices full of ties).

The package's algorithm (``munkres.py``, Apache 2.0):

1. subtract each row's minimum from the row (rectangular matrices are first padded with zeros
   to a square of side S);
2. star the first zero of each row, in row order, whose column has no star yet;
3. cover the columns with a star; S of them: the stars are the assignment;
4. from (row, col) = (0, 0): find an uncovered zero (:func:`_find_zero`) and prime it; a star
   in its row: cover the row, uncover the star's column, search again from (row, star
   column); none: step 5; no uncovered zero: step 6;
5. from the prime, alternately the star in its column and the prime in that star's row: swap
   stars and primes along that path, erase the primes, uncover everything, step 3;
6. add the smallest uncovered value to the covered rows, subtract it from the uncovered
   columns (in that order for each element), step 4 from (0, 0).

Note:
    - rows of the cost matrix: R (candidates); columns: C; side of the padded square: S
"""
import sys

import numba
import numpy as np

__all__ = ['START_MINIMUM', 'munkres_pairs', 'munkres_stars']

# The package starts its search for the smallest uncovered value at sys.maxsize.
START_MINIMUM = float(sys.maxsize)


def munkres_pairs(costs: np.ndarray) -> np.ndarray:
    """``np.array(Munkres().compute(costs.tolist()))``, computed by the compiled steps.

    Args:
        costs (np.ndarray): (R, C) finite costs; converted to float64 as ``tolist`` does for
            float arrays.

    Returns:
        np.ndarray: int64 (P, 2) ``(row, col)`` pairs inside the (R, C) matrix, by row.
    """
    num_rows, num_cols = costs.shape
    size = max(num_rows, num_cols)
    matrix = np.zeros((size, size))
    matrix[:num_rows, :num_cols] = costs
    star_of_row = munkres_stars(matrix, START_MINIMUM)
    rows = np.arange(num_rows)
    cols = star_of_row[:num_rows]
    real = cols < num_cols
    return np.stack([rows[real], cols[real]], axis=1)


@numba.njit(cache=True, nogil=True)
def munkres_stars(matrix, start_minimum):  # pragma: no cover (compiled)
    """Steps 1-6 on the (S, S) float64 ``matrix`` (reduced in place): the star of each row."""
    size = len(matrix)
    for row in range(size):  # step 1
        matrix[row] -= matrix[row].min()
    star_of_row = np.full(size, -1, np.int64)
    star_of_col = np.full(size, -1, np.int64)
    prime_of_row = np.full(size, -1, np.int64)
    row_covered = np.zeros(size, np.bool_)
    col_covered = np.zeros(size, np.bool_)
    for row in range(size):  # step 2, row-major
        for col in range(size):
            if matrix[row, col] == 0 and star_of_row[row] < 0 and star_of_col[col] < 0:
                star_of_row[row] = col
                star_of_col[col] = row
    while True:
        col_covered[:] = star_of_col >= 0  # step 3
        if col_covered.all():
            return star_of_row
        row, col = 0, 0
        while True:  # step 4, with step 6 whenever no uncovered zero is left
            row, col = _find_zero(matrix, row_covered, col_covered, row, col)
            if row < 0:
                _shift_uncovered(matrix, row_covered, col_covered, start_minimum)
                row, col = 0, 0
                continue
            prime_of_row[row] = col
            star_col = star_of_row[row]
            if star_col < 0:
                break
            row_covered[row] = True
            col_covered[star_col] = False
            col = star_col
        while True:  # step 5: from the prime, each prime on the path replaces its column's star
            next_row = star_of_col[col]
            star_of_row[row] = col
            star_of_col[col] = row
            if next_row < 0:
                break
            row = next_row
            col = prime_of_row[row]
        prime_of_row[:] = -1
        row_covered[:] = False
        col_covered[:] = False


@numba.njit(cache=True, nogil=True)
def _find_zero(matrix, row_covered, col_covered, row0, col0):  # pragma: no cover (compiled)
    """The package's ``__find_a_zero(row0, col0)``: ``(row, col)``, or ``(-1, -1)``.

    Rows are scanned from ``row0`` on, cyclically; the first row holding an uncovered zero
    is taken, and in it the zero the package's scan visits last: columns are visited from
    ``col0`` on, cyclically, and the scan does not stop at a match.
    """
    size = len(matrix)
    for step in range(size):
        row = (row0 + step) % size
        if row_covered[row]:
            continue
        found = -1
        for step_col in range(size):
            col = (col0 + step_col) % size
            if matrix[row, col] == 0 and not col_covered[col]:
                found = col
        if found >= 0:
            return row, found
    return -1, -1


@numba.njit(cache=True, nogil=True)
def _shift_uncovered(matrix, row_covered, col_covered, start_minimum):  # pragma: no cover
    """Step 6, element by element as the package: ``+= m`` on covered rows, then ``-= m`` on
    uncovered columns, m the smallest uncovered value."""
    size = len(matrix)
    smallest = start_minimum
    for row in range(size):
        for col in range(size):
            if not row_covered[row] and not col_covered[col] and matrix[row, col] < smallest:
                smallest = matrix[row, col]
    for row in range(size):
        for col in range(size):
            if row_covered[row]:
                matrix[row, col] += smallest
            if not col_covered[col]:
                matrix[row, col] -= smallest
