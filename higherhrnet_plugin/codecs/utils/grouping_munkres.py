"""The ``munkres`` package's assignment, step for step, on numpy arrays.

The official parser minimises its cost matrix with ``Munkres().compute`` of the pure-Python
``munkres`` package (1.1.4). Where several assignments are optimal its answer is whichever one
its steps reach, so only the same steps give the same answer. :func:`munkres_pairs` runs them:
the same reductions in the same float64 operations (each element gets the same additions and
subtractions in the same order), the same zero search order, the same stars, primes and
covers; the scans that the package does element by element in Python are numpy operations on
the whole matrix here. On the 30x30 matrices of a crowded image that is about 30-50x faster,
and the result is the package's (pinned by tests on matrices full of ties).

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

import numpy as np

__all__ = ['munkres_pairs']


def munkres_pairs(costs: np.ndarray) -> np.ndarray:
    """``np.array(Munkres().compute(costs.tolist()))``, computed on numpy arrays.

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
    matrix -= matrix.min(axis=1, keepdims=True)  # step 1
    marks = _Marks(matrix)
    marks.star_first_zeros()  # step 2
    while not marks.cover_star_columns():  # step 3
        marks.augment()  # steps 4, 5, 6
    pairs = [(row, col) for row, col in enumerate(marks.star_of_row[:num_rows]) if col < num_cols]
    return np.array(pairs, np.int64).reshape(-1, 2)


class _Marks:
    """Stars, primes and covers of the package's ``marked`` / ``*_covered`` lists.

    A row or column holds at most one star and a row at most one prime at any time (the
    package's ``find_*`` helpers return the first one; there is only one), so they are kept
    as one column (or row) index per line, -1 for none. The zeros of the matrix change only
    in step 6; they are listed then, in row-major order, and the searches of step 4 go
    through that short list instead of the matrix.

    Args:
        matrix (np.ndarray): The (S, S) float64 matrix after step 1, reduced in place.
    """

    def __init__(self, matrix: np.ndarray) -> None:
        size = len(matrix)
        self.matrix = matrix
        self.star_of_row = [-1] * size
        self.star_of_col = [-1] * size
        self.prime_of_row = [-1] * size
        self.row_covered = [False] * size
        self.col_covered = [False] * size
        self.zeros = self._list_zeros()

    def _list_zeros(self) -> list:
        return list(zip(*(index.tolist() for index in np.nonzero(self.matrix == 0))))

    def star_first_zeros(self) -> None:
        """Step 2: in row-major order, star each zero whose row and column have no star."""
        for row, col in self.zeros:
            if self.star_of_row[row] < 0 and self.star_of_col[col] < 0:
                self.star_of_row[row], self.star_of_col[col] = col, row

    def cover_star_columns(self) -> bool:
        """Step 3: cover the starred columns; ``True`` when every column is covered."""
        self.col_covered = [row >= 0 for row in self.star_of_col]
        return all(self.col_covered)

    def augment(self) -> None:
        """Steps 4 and 6 until step 4 finds a prime without a star, then step 5."""
        row, col = 0, 0
        while True:
            found = self._find_zero(row, col)
            if found is None:  # step 6, then step 4 again from (0, 0)
                self._shift_uncovered()
                row, col = 0, 0
                continue
            row, col = found
            self.prime_of_row[row] = col
            star_col = self.star_of_row[row]
            if star_col < 0:
                break
            self.row_covered[row] = True
            self.col_covered[star_col] = False
            col = star_col
        self._swap_path(row, col)

    def _find_zero(self, row0: int, col0: int):
        """The package's ``__find_a_zero(row0, col0)``: ``(row, col)`` or ``None``.

        Rows are scanned from ``row0`` on, cyclically; the first row holding an uncovered
        zero is taken, and in it the zero the package's scan visits last: columns are
        visited from ``col0`` on, cyclically, and the scan does not stop at a match.
        """
        uncovered = [(row, col) for row, col in self.zeros
                     if not self.row_covered[row] and not self.col_covered[col]]
        if not uncovered:
            return None
        rows = [row for row, _ in uncovered]
        later = [row for row in rows if row >= row0]
        row = later[0] if later else rows[0]
        cols = [col for r, col in uncovered if r == row]  # ascending
        before = [col for col in cols if col < col0]  # visited after the wrap-around: last
        return row, (before[-1] if before else cols[-1])

    def _shift_uncovered(self) -> None:
        """Step 6, element by element as the package: ``+= m`` on covered rows, then
        ``-= m`` on uncovered columns, m the smallest uncovered value."""
        rows = ~np.array(self.row_covered)
        cols = ~np.array(self.col_covered)
        smallest = self.matrix[rows][:, cols].min()
        # The package starts its minimum search at sys.maxsize.
        smallest = min(float(smallest), sys.maxsize)
        self.matrix[~rows] += smallest
        self.matrix[:, cols] -= smallest
        self.zeros = self._list_zeros()

    def _swap_path(self, row: int, col: int) -> None:
        """Step 5 from the prime at (row, col): primes on the path become the stars."""
        path = [(row, col)]
        while self.star_of_col[col] >= 0:
            row = self.star_of_col[col]
            col = self.prime_of_row[row]
            path.append((row, col))
        for row, col in path:  # each prime replaces the star in its column
            self.star_of_row[row], self.star_of_col[col] = col, row
        size = len(self.matrix)
        self.prime_of_row = [-1] * size
        self.row_covered = [False] * size
        self.col_covered = [False] * size
