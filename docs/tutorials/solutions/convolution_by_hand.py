"""Notebook 1, convolution by hand: the solutions of its exercises."""

import numpy as np


def out_size(H, FH, P, S):
    # The window's top edge takes the rows 0, S, 2S, ... that leave room for FH rows.
    return (H + 2 * P - FH) // S + 1


padding_for_5x5 = 2          # (28 + 2P - 5) + 1 = 28 needs P = 2

edge_kernel = np.array([[-1, 0, 1],
                        [-1, 0, 1],
                        [-1, 0, 1]], dtype=np.float64)   # right column minus left column
