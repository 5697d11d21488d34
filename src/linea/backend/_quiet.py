"""NumPy's floating-point warnings kept inside linea's ops, as PyTorch never prints them.

``inf − inf``, ``0 · inf`` or an overflowing cast make NumPy print a ``RuntimeWarning``
("invalid value encountered in multiply"); PyTorch computes the same IEEE values silently.
linea's ops run under NumPy's "ignore all" error state, set only while an op runs, so a
user's own NumPy code keeps its warnings.

``np.errstate`` costs about 1 µs per use, as much as a small Linear's whole forward, so
the state is set through the context variable ``np.errstate`` itself sets (NumPy ≥ 2),
captured once from a real ``np.errstate(all="ignore")``: about 0.15 µs. Where NumPy has
no such variable, ``np.errstate`` is used as it is.
"""
from __future__ import annotations

import functools

import numpy as np

__all__ = ["quiet", "quietly"]


def _ignore_all_state():
    """(NumPy's error-state context variable, its "ignore all" value), or (None, None)."""
    try:
        from numpy._core import _ufunc_config
    except ImportError:
        return None, None
    variable = getattr(_ufunc_config, "_extobj_contextvar", None)
    if variable is None:
        return None, None
    with np.errstate(all="ignore"):
        return variable, variable.get()


_STATE, _IGNORE_ALL = _ignore_all_state()


class quietly:
    """``with quietly():`` — NumPy's floating-point warnings off for the block (re-entrant)."""

    __slots__ = ("_token", "_fallback")

    def __enter__(self):
        if _STATE is not None:
            self._token = _STATE.set(_IGNORE_ALL)
        else:
            self._fallback = np.errstate(all="ignore")
            self._fallback.__enter__()
        return self

    def __exit__(self, *exc_info) -> None:
        if _STATE is not None:
            _STATE.reset(self._token)
        else:
            self._fallback.__exit__(*exc_info)


def quiet(function):
    """``function`` run with NumPy's floating-point warnings off (a decorator for ops)."""
    if _STATE is None:
        @functools.wraps(function)
        def quiet_op(*args, **kwargs):
            with np.errstate(all="ignore"):
                return function(*args, **kwargs)

        return quiet_op

    set_state, reset_state, ignore_all = _STATE.set, _STATE.reset, _IGNORE_ALL

    @functools.wraps(function)
    def quiet_op(*args, **kwargs):
        token = set_state(ignore_all)
        try:
            return function(*args, **kwargs)
        finally:
            reset_state(token)

    return quiet_op
