"""Checks of user input shared by the problems, the spectral tools and the trajectory runner.

Each check raises ``ValueError`` naming the argument, what it must be and what it got, so that a
bad input fails where it enters instead of coming back as a complex trajectory, a NaN Hessian-
vector product or NumPy's own words about seeds. The checks work on arrays of any array-API
namespace (NumPy, torch).

Every bad input tried, with the exact error it gets: docs/bad_inputs.md; the failure model:
docs/reliability.md.
"""

from __future__ import annotations

import math
import numbers
from typing import Any

import numpy as np

from xsam_theory.backend import namespace

__all__ = ["check_directions", "check_real", "check_seed", "check_tolerance", "check_vector"]


def _describe(x: Any) -> str:
    """What ``x`` is, for a message: ``None`` or ``a list``, ``a float``..."""
    return "None" if x is None else f"a {type(x).__name__}"


def check_real(name: str, x: Any) -> None:
    """Raise ``ValueError`` unless the array ``x`` holds real numbers.

    Real means a floating-point or integer dtype (complex parts would be dropped or kept silently,
    booleans read as 0 and 1).
    """
    if not namespace(x).isdtype(x.dtype, ("real floating", "integral")):
        raise ValueError(
            f"{name} must hold real numbers (a floating-point or integer dtype), "
            f"got dtype {x.dtype}"
        )


def _check_array(name: str, x: Any, shape_text: str) -> Any:
    """The array namespace of ``x``, after checking that ``x`` is an array of real numbers.

    ``ValueError`` if ``x`` is not an array (a list, a float) or holds something other than real
    numbers (complex, bool, strings).
    """
    if not hasattr(x, "shape") or not hasattr(x, "dtype"):
        raise ValueError(f"{name} must be an array of shape {shape_text}, got {_describe(x)}")
    check_real(name, x)
    return namespace(x)


def check_vector(name: str, x: Any, dim: int) -> None:
    """Raise ``ValueError`` unless ``x`` is a finite real vector of shape ``(dim,)``.

    Real means a floating-point or integer dtype; not complex, not bool.
    """
    shape = tuple(getattr(x, "shape", ()))
    if hasattr(x, "shape") and shape != (dim,):
        raise ValueError(f"{name} must have shape ({dim},), got {shape}")
    xp = _check_array(name, x, f"({dim},)")
    if not bool(xp.all(xp.isfinite(x))):
        raise ValueError(f"{name} contains non-finite values (NaN or inf)")


def check_directions(name: str, V: Any, dim: int) -> None:
    """Raise ``ValueError`` unless ``V`` is a finite real array of shape ``(k, dim)``.

    The ``k`` rows of ``V`` are directions.
    """
    shape = tuple(getattr(V, "shape", ()))
    if hasattr(V, "shape") and (len(shape) != 2 or shape[1] != dim):
        raise ValueError(f"{name} must have shape (k, {dim}), got {shape}")
    xp = _check_array(name, V, f"(k, {dim})")
    if not bool(xp.all(xp.isfinite(V))):
        raise ValueError(f"{name} contains non-finite values (NaN or inf)")


def check_seed(seed: Any, name: str = "seed", *, generator_ok: bool = False) -> Any:
    """``seed`` as an ``int``, checked: an integer ``>= 0``.

    With ``generator_ok``, a ``numpy.random.Generator`` is accepted too and returned as is.

    ``None`` is refused: NumPy would draw fresh entropy from the operating system, and the
    package promises that the same seed gives the same result.
    """
    if generator_ok and isinstance(seed, np.random.Generator):
        return seed
    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral) or seed < 0:
        hint = " (None is not reproducible: pass an int)" if seed is None else ""
        raise ValueError(f"{name} must be an integer >= 0, got {seed!r}{hint}")
    return int(seed)


def check_tolerance(name: str, value: Any) -> float:
    """``value`` as a ``float``, checked: a finite real number ``>= 0`` (not a bool)."""
    if (
        isinstance(value, bool)
        or not isinstance(value, numbers.Real)
        or not math.isfinite(value)
        or value < 0
    ):
        raise ValueError(f"{name} must be a finite number >= 0, got {value!r}")
    return float(value)
