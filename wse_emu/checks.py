"""One check for integers that come from users (API arguments, overrides, mesh sizes):
bools and floats are refused rather than truncated, and the message names the value."""

from __future__ import annotations

import operator


def integer(
    value,
    what: str,
    lo: int | None = None,
    hi: int | None = None,
    type_error: type[Exception] = TypeError,
    range_error: type[Exception] = ValueError,
) -> int:
    """value as an int in [lo, hi] (either bound may be None), else type_error or
    range_error naming `what`. Anything with __index__ counts (NumPy integers, 0-d integer
    arrays); floats, 0-d float arrays and bools do not."""
    bounds = f" in [{lo}, {hi}]" if lo is not None and hi is not None else ""
    try:
        if isinstance(value, bool):
            raise TypeError
        i = operator.index(value)
    except TypeError:
        raise type_error(f"{what} must be an integer{bounds}, got {value!r}") from None
    if hi is None and lo is not None and i < lo:
        raise range_error(f"{what} must be at least {lo}, got {i}")
    if (lo is not None and i < lo) or (hi is not None and i > hi):
        raise range_error(f"{what} = {i} is outside its range [{lo}, {hi}]")
    return i
