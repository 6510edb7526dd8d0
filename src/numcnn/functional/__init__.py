"""Stateless kernels: every function takes arrays and returns arrays, forward and backward
side by side. Layers in ``numcnn.layers`` own parameters and call these."""

from .adaptive import (adaptive_avg_pool2d_backward, adaptive_avg_pool2d_forward, adaptive_max_pool2d_backward,
                       adaptive_max_pool2d_forward)
from .activation import (leaky_relu, leaky_relu_backward, log_softmax, relu, relu_backward,
                         sigmoid, sigmoid_backward, softmax, softmax_backward, tanh, tanh_backward)
from .conv import conv2d, conv2d_backward, conv2d_forward
from .conv_transpose import conv_transpose2d, conv_transpose2d_backward, conv_transpose2d_forward
from .dropout import dropout_backward, dropout_forward, hash_uniform
from .im2col import col2im, im2col
from .linear import linear_backward, linear_forward
from .loss import (cross_entropy, cross_entropy_backward, cross_entropy_forward, mse_backward,
                   mse_forward, mse_loss)
from .pool import (avg_pool2d, avg_pool2d_backward, avg_pool2d_forward, global_avg_pool2d,
                   global_avg_pool2d_backward, max_pool2d, max_pool2d_backward, max_pool2d_forward)
from .norm import batch_norm_backward, batch_norm_forward
from .unpool import max_pool2d_indices, max_unpool2d_backward, max_unpool2d_forward
from .validate import check_float_array
from .window import output_size, pair, resolve_padding

__all__ = [
    "im2col", "col2im", "output_size", "pair", "resolve_padding", "check_float_array",
    "conv2d", "conv2d_forward", "conv2d_backward", "conv_transpose2d", "conv_transpose2d_forward",
    "conv_transpose2d_backward", "linear_forward", "linear_backward",
    "max_pool2d", "max_pool2d_forward", "max_pool2d_backward",
    "avg_pool2d", "avg_pool2d_forward", "avg_pool2d_backward",
    "global_avg_pool2d", "global_avg_pool2d_backward",
    "adaptive_avg_pool2d_forward", "adaptive_avg_pool2d_backward", "adaptive_max_pool2d_forward",
    "adaptive_max_pool2d_backward", "max_pool2d_indices", "max_unpool2d_forward", "max_unpool2d_backward",
    "relu", "relu_backward", "leaky_relu", "leaky_relu_backward", "sigmoid", "sigmoid_backward",
    "tanh", "tanh_backward", "softmax", "softmax_backward", "log_softmax",
    "cross_entropy", "cross_entropy_forward", "cross_entropy_backward",
    "mse_loss", "mse_forward", "mse_backward",
    "batch_norm_forward", "batch_norm_backward", "dropout_forward", "dropout_backward", "hash_uniform",
]
