"""Transposed convolution: col2im seen from the other side.

A convolution maps an input y (OH, OW) to an output x (H, W) by unfolding y's windows (im2col)
and one GEMM with the weight. Its transpose maps x back to y: one GEMM gives each input pixel's
contribution to a window of y (a column), and col2im adds the overlapping windows up. That is
the textbook's col2im, used as a layer in its own right: what autoencoders and U-Nets call
"deconvolution". Its backward runs the other way, through the convolution's forward: the
gradient of x is the convolution of y's gradient with the same weight, and the weight's
gradient is that convolution's weight gradient.

Shapes, PyTorch's: x (N, C_in, H, W), weight (C_in, C_out / groups, KH, KW), bias (C_out,),
out (N, C_out, OH, OW) with OH = (H - 1)*SH - 2*PH + DH*(KH - 1) + output_padding_h + 1.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from ..backend import get_array_module
from ..errors import ConfigError, ShapeError
from .conv import conv2d_backward, conv2d_forward
from .im2col import fold
from .validate import check_float_array, check_same_device
from .window import make_window, pair, unpad

__all__ = ["conv_transpose2d_forward", "conv_transpose2d_backward", "conv_transpose2d", "transposed_size"]


def transposed_size(size: int, kernel: int, stride: int, padding: int, output_padding: int, dilation: int) -> int:
    """The output side of a transposed convolution along one axis."""
    return (size - 1) * stride - 2 * padding + dilation * (kernel - 1) + output_padding + 1


class ConvTransposeCache(NamedTuple):
    """What backward needs: the input and the weight, and the geometry."""
    x: object
    weight: object
    stride: tuple
    padding: tuple
    dilation: tuple
    groups: int
    has_bias: bool


def _geometry(x, weight, stride, padding, output_padding, dilation, groups):
    stride, padding = pair(stride, "conv_transpose2d: stride", 1), pair(padding, "conv_transpose2d: padding")
    dilation = pair(dilation, "conv_transpose2d: dilation", 1)
    output_padding = pair(output_padding, "conv_transpose2d: output_padding")
    for axis in range(2):
        if output_padding[axis] >= max(stride[axis], dilation[axis]):
            raise ConfigError(f"conv_transpose2d: output_padding must be smaller than the stride or the "
                              f"dilation, got output_padding {output_padding}, stride {stride}, dilation {dilation}")
    if not isinstance(groups, (int, np.integer)) or isinstance(groups, bool) or groups < 1:
        raise ConfigError(f"conv_transpose2d: groups must be a positive int, got {groups!r}")
    c_in, f_g, kh, kw = weight.shape
    if x.shape[1] != c_in or c_in % groups:
        raise ShapeError(f"conv_transpose2d: expected input with {c_in} channels, divisible by groups={groups} "
                         f"(weight {weight.shape}), got input of shape {x.shape}")
    oh = transposed_size(x.shape[2], kh, stride[0], padding[0], output_padding[0], dilation[0])
    ow = transposed_size(x.shape[3], kw, stride[1], padding[1], output_padding[1], dilation[1])
    if oh < 1 or ow < 1:
        raise ShapeError(f"conv_transpose2d: the output would be {oh}x{ow} for input {x.shape[2]}x{x.shape[3]}")
    return stride, padding, dilation, (x.shape[0], f_g * groups, oh, ow)


def _extend(a, rows: int, cols: int):
    """a (..., H, W) with zeros added below and right up to (rows, cols): where the output
    padding makes the convolution read one more window than the input has pixels (a dilation
    larger than the stride), that window contributes nothing."""
    if a.shape[-2:] == (rows, cols):
        return a
    xp = get_array_module(a)
    out = xp.zeros(a.shape[:-2] + (rows, cols), dtype=a.dtype)
    out[..., :a.shape[-2], :a.shape[-1]] = a
    return out


def conv_transpose2d_forward(x, weight, bias=None, stride=1, padding=0, output_padding=0, groups=1, dilation=1):
    """The transposed convolution: one GEMM into columns, then col2im.

    Parameters
    ----------
    x : ndarray, shape (N, C_in, H, W)
        Float input.
    weight : ndarray, shape (C_in, C_out // groups, KH, KW)
        PyTorch's layout: the weight of the convolution this one is the transpose of.
    bias : ndarray, shape (C_out,), optional
        Added to each output channel; None for none.
    stride : int or pair of int, default 1
        (SH, SW).
    padding : int or pair of int, default 0
        (PH, PW), cropped from each side of the full output.
    output_padding : int or pair of int, default 0
        Rows and columns added at the bottom and right (smaller than the stride or the
        dilation), to reach an output size the stride would otherwise make ambiguous.
    groups : int, default 1
        C_in and C_out both divisible by it.
    dilation : int or pair of int, default 1
        (DH, DW), the spacing of the kernel's taps.

    Returns
    -------
    out : ndarray, shape (N, C_out, OH, OW)
        OH = (H - 1)*SH - 2*PH + DH*(KH - 1) + output_padding + 1, likewise OW.
    cache : ConvTransposeCache
        What ``conv_transpose2d_backward`` needs.
    """
    xp = get_array_module(x)
    x = check_float_array(x, "conv_transpose2d", 4)
    weight = check_float_array(weight, "conv_transpose2d", 4, what="weight")
    check_same_device("conv_transpose2d", x, weight=weight, bias=bias)
    stride, padding, dilation, out_shape = _geometry(x, weight, stride, padding, output_padding, dilation, groups)
    n, c_in, h, w = x.shape
    _, f_g, kh, kw = weight.shape
    # The convolution whose transpose this is reads out_shape through this window onto (H, W).
    win = make_window(out_shape, (kh, kw), stride, padding, dilation, "conv_transpose2d")
    w_t = weight.astype(x.dtype, copy=False).reshape(groups, c_in // groups, f_g * kh * kw).transpose(0, 2, 1)
    col = xp.matmul(w_t, x.reshape(n, groups, c_in // groups, h * w))  # (N, G, C_out/G*KH*KW, H*W)
    col = _extend(col.reshape(n, groups * f_g, kh, kw, h, w), win.oh, win.ow)
    padded = (n, out_shape[1], out_shape[2] + win.pads[0] + win.pads[1], out_shape[3] + win.pads[2] + win.pads[3])
    out = unpad(fold(col, padded, win), win.pads)
    if bias is not None:
        out = out + bias.astype(x.dtype, copy=False)[:, None, None]
    return xp.ascontiguousarray(out), ConvTransposeCache(x, weight, stride, padding, dilation, groups, bias is not None)


def conv_transpose2d_backward(dout, cache):
    """Gradients through the convolution's forward.

    Parameters
    ----------
    dout : ndarray, shape (N, C_out, OH, OW)
        The gradient of the output.
    cache : ConvTransposeCache
        What ``conv_transpose2d_forward`` returned beside its output.

    Returns
    -------
    dx : ndarray, shape (N, C_in, H, W)
        The convolution of dout with the weight.
    dweight : ndarray, shape (C_in, C_out // groups, KH, KW)
        That convolution's weight gradient for output gradient x.
    dbias : ndarray, shape (C_out,), or None
        None when forward had no bias.
    """
    x, weight, stride, padding, dilation, groups, has_bias = cache
    dout = check_float_array(dout, "conv_transpose2d_backward", 4, what="dout")
    dout = dout.astype(x.dtype, copy=False)
    dx, conv_cache = conv2d_forward(dout, weight, None, stride, padding, dilation, groups)
    if dx.shape[:2] != x.shape[:2] or dx.shape[2] < x.shape[2] or dx.shape[3] < x.shape[3]:
        raise ShapeError(f"conv_transpose2d_backward: dout of shape {dout.shape} does not fit the input {x.shape}")
    _, dweight, _ = conv2d_backward(_extend(x, *dx.shape[2:]), conv_cache, input_grad=False)
    dx = dx[:, :, :x.shape[2], :x.shape[3]]
    dbias = dout.sum(axis=(0, 2, 3)) if has_bias else None
    return dx, dweight, dbias


def conv_transpose2d(x, weight, bias=None, stride=1, padding=0, output_padding=0, groups=1, dilation=1):
    """Forward only: ``conv_transpose2d_forward``'s output without the cache.

    Parameters
    ----------
    x : ndarray, shape (N, C_in, H, W)
        Float input.
    weight : ndarray, shape (C_in, C_out // groups, KH, KW)
        PyTorch's layout.
    bias, stride, padding, output_padding, groups, dilation
        As ``conv_transpose2d_forward`` takes them.

    Returns
    -------
    ndarray, shape (N, C_out, OH, OW)
        As ``conv_transpose2d_forward``'s out.
    """
    return conv_transpose2d_forward(x, weight, bias, stride, padding, output_padding, groups, dilation)[0]
