"""The textbook CNN code ("Deep Learning from Scratch", ch. 7) that the benchmark measures against.

It lives in the package as ``numcnn._textbook`` so that ``numcnn bench`` can reach it once
installed; this module re-exports it for readers and scripts in ``benchmarks/``:

    from textbook import Convolution, Pooling, im2col, col2im
"""

from numcnn._textbook import (Adam, Affine, AvgPooling, Convolution, Dropout, LayerNet, Pooling, Relu,
                              SoftmaxWithLoss, col2im, cross_entropy_error, im2col, softmax)

__all__ = ["im2col", "col2im", "Convolution", "Pooling", "AvgPooling", "Relu", "Affine", "Dropout",
           "softmax", "cross_entropy_error", "SoftmaxWithLoss", "Adam", "LayerNet"]
