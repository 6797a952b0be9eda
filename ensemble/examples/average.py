"""The example for ``codeconductor demo``: a small function with a bug that its own docstring shows.

``average([])`` should be ``0.0`` (the second example) but divides by zero. The consensus runs every answer on the
docstring's examples, refuses the ones that break one, and offers the fix that passes them all.
"""

from __future__ import annotations


def average(values: list[float]) -> float:
    """The mean of ``values``; ``0.0`` for an empty list.

    >>> average([1.0, 2.0, 3.0])
    2.0
    >>> average([])
    0.0
    >>> average([5.0])
    5.0
    """
    return sum(values) / len(values)
