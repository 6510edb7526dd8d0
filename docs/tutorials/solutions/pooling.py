"""Notebook 3, pooling: the solutions of its exercises."""

import numpy as np


def max_pool_grad(x, dout):
    dx = np.zeros_like(x)
    for i in range(dout.shape[0]):
        for j in range(dout.shape[1]):
            window = x[2 * i:2 * i + 2, 2 * j:2 * j + 2]
            r, c = np.unravel_index(np.argmax(window), window.shape)   # the first maximum wins
            dx[2 * i + r, 2 * j + c] += dout[i, j]
    return dx


corner_include_pad = 2.0 * 4 / 9    # 4 real pixels of 2.0, divided by all 9 cells
corner_exclude_pad = 2.0            # divided by the 4 real pixels only

answers = {"max_pool": True, "avg_pool": False}   # max(a, b) and max(., 0) commute; a mean does not
