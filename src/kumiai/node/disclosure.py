"""The node draws the noise of its `dp` statistics releases (rules: kumiai.domain.disclosure).

OpenDP's Laplace mechanisms, not numpy's: a textbook floating-point Laplace leaks through
the low bits of its output (Mironov, 2012). OpenDP samples whole numbers exactly
(discrete Laplace) and floats on a lattice, from the operating system's entropy.
"""

from functools import lru_cache
from typing import Any


@lru_cache(maxsize=1)
def _opendp() -> Any:
    import opendp.prelude as dp  # lazy: only a node releasing dp statistics needs it

    dp.enable_features("contrib")
    return dp


def laplace(values: list[float], scale: float, integer: bool) -> list[float]:
    """`values` with independent Laplace noise of `scale` added to each one."""
    dp = _opendp()
    if integer:
        domain = dp.vector_domain(dp.atom_domain(T=int))
        measure = dp.m.make_laplace(domain, dp.l1_distance(T=int), scale=scale)
        return [float(v) for v in measure([round(v) for v in values])]
    domain = dp.vector_domain(dp.atom_domain(T=float, nan=False))
    measure = dp.m.make_laplace(domain, dp.l1_distance(T=float), scale=scale)
    return [float(v) for v in measure([float(v) for v in values])]
