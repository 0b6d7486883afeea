"""Reference update rules. Each takes (w, dw, state) and returns (next_w, state)."""
from __future__ import annotations

import numpy as np

from . import reference


@reference("optim.sgd_momentum")
def sgd_momentum(w, dw, state=None, lr=1e-2, momentum=0.9):
    """SGD with momentum as in the lecture: delta <- momentum * delta + dw; w <- w - lr * delta.

    state: a dict holding "delta" (same shape as w), created as zeros on the first call.
    Returns (next_w, state).
    """
    state = {} if state is None else state
    delta = momentum * state.get("delta", np.zeros_like(w)) + dw
    state["delta"] = delta
    return w - lr * delta, state
