"""The retention fold's loop (:mod:`.fold`), compiled by Numba (``cache=True``), in a module of its own so that
importing retention does not import Numba."""

from __future__ import annotations

from typing import Any

import numpy as np
from numba import njit


@njit(cache=True, nogil=True)
def first_and_periods(user: Any, t: Any, b: Any, lo: int, t0: Any, m: Any) -> None:
    """Fold rows into each person's state, held at ``user − lo``: the earliest time ``t0`` and the bits ``m`` of
    the periods with an event (``b``: the row's period, −1 for none)."""
    for i in range(len(user)):
        key = user[i] - lo
        t0[key] = min(t0[key], t[i])
        if b[i] >= 0:
            m[key] |= np.uint64(1) << np.uint64(b[i])
