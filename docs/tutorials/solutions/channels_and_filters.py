"""Notebook 2, channels and filters: the solutions of its exercises."""

import numpy as np


def conv_by_hand(x, k, stride=1, padding=0):
    """One-channel convolution with loops, as in the notebook. x: (H, W), k: (FH, FW) -> (OH, OW)."""
    x = np.pad(x, padding)
    FH, FW = k.shape
    rows = range(0, x.shape[0] - FH + 1, stride)
    cols = range(0, x.shape[1] - FW + 1, stride)
    return np.array([[np.sum(x[r:r + FH, c:c + FW] * k) for c in cols] for r in rows])


def conv_params(in_channels, out_channels, kernel_size):
    # each filter: one kernel per input channel, and one bias
    return out_channels * (in_channels * kernel_size ** 2 + 1)


gray_weight = np.array([0.299, 0.587, 0.114]).reshape(1, 3, 1, 1)


def conv_multi(x, w):
    N, C = x.shape[:2]
    FN = w.shape[0]
    return np.array([[sum(conv_by_hand(x[n, c], w[f, c]) for c in range(C)) for f in range(FN)]
                     for n in range(N)])
