"""An example for ``codeconductor demo``: a correct but slow function that is worth improving.

The docstring's examples let the consensus check candidates by running them.
"""

from __future__ import annotations


def primes_below(n: int) -> list[int]:
    """Return the prime numbers smaller than ``n``, in increasing order.

    >>> primes_below(10)
    [2, 3, 5, 7]
    >>> primes_below(2)
    []
    >>> primes_below(30)
    [2, 3, 5, 7, 11, 13, 17, 19, 23, 29]
    """
    result: list[int] = []
    for candidate in range(2, n):
        is_prime = True
        for divisor in range(2, candidate):
            if candidate % divisor == 0:
                is_prime = False
        if is_prime:
            result.append(candidate)
    return result
