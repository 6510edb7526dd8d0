"""Conv2d and ConvTranspose2d: each owns its weight and bias and calls its kernels."""

from __future__ import annotations

import numpy as np

from .. import init
from ..errors import ConfigError
from ..functional.conv import conv2d_backward, conv2d_forward
from ..functional.conv_transpose import conv_transpose2d_backward, conv_transpose2d_forward
from ..functional import pair, resolve_padding
from .activation import FusesReLU
from .base import Layer, backward_before_forward, check_input, errors_named, jsonable, register_layer


def _check_channels(layer: str, in_channels, out_channels, groups) -> None:
    """Positive ints, both channel counts divisible by groups; a ConfigError naming the layer if not."""
    for name, value in (("in_channels", in_channels), ("out_channels", out_channels), ("groups", groups)):
        if not isinstance(value, (int, np.integer)) or value < 1:
            raise ConfigError(f"{layer}: {name} must be a positive int, got {value!r}")
    if in_channels % groups or out_channels % groups:
        raise ConfigError(f"{layer}: in_channels ({in_channels}) and out_channels ({out_channels}) "
                          f"must both be divisible by groups ({groups})")


@register_layer
class Conv2d(FusesReLU, Layer):
    """2-D convolution with PyTorch's arguments and parameter layout.

    Maps an (N, in_channels, H, W) input to an (N, out_channels, OH, OW) output, with
    OH = (H + PT + PB - dilation*(KH - 1) - 1) // stride + 1 (``functional.conv2d_forward``).

    Parameters
    ----------
    in_channels : int
        C, the input's channels.
    out_channels : int
        F, the number of kernels and output channels.
    kernel_size : int or pair of int
        (KH, KW).
    stride : int or pair of int, default 1
        (SH, SW).
    padding : int, pair, 4-tuple, "valid" or "same", default 0
        Zero padding: (PH, PW) for a pair, (top, bottom, left, right) for a 4-tuple; "same"
        keeps H and W (stride 1 only).
    dilation : int or pair of int, default 1
        (DH, DW), the spacing of the kernel's taps.
    groups : int, default 1
        in_channels and out_channels are split into this many groups, each convolved on its own.
    bias : bool, default True
        Whether the layer has a bias.
    dtype : dtype, default float32
        The parameters' dtype.

    Attributes
    ----------
    params : dict of str to ndarray
        ``weight``, shape (out_channels, in_channels // groups, KH, KW), He-normal
        initialised; ``bias``, shape (out_channels,), zeros (without bias=False).
    """

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0, dilation=1,
                 groups=1, bias=True, dtype=np.float32):
        super().__init__()
        with errors_named("Conv2d"):
            kh, kw = pair(kernel_size, "kernel_size", 1)
            pair(stride, "stride", 1), pair(dilation, "dilation", 1)
            if not isinstance(padding, str):
                resolve_padding(padding, (kh, kw), (1, 1), (1, 1))  # an int, a pair or (top, bottom, left, right)
            elif padding not in ("same", "valid"):
                raise ConfigError(f"padding must be an int, a pair, a 4-tuple, 'same' or 'valid', got {padding!r}")
        _check_channels("Conv2d", in_channels, out_channels, groups)
        if padding == "same" and pair(stride, "stride", 1) != (1, 1):
            raise ConfigError(f"Conv2d: padding='same' needs stride 1, got stride {stride}")
        self.in_channels, self.out_channels = int(in_channels), int(out_channels)
        self.kernel_size = (kh, kw)
        self.stride, self.padding, self.dilation, self.groups = stride, padding, dilation, int(groups)
        self.dtype = np.dtype(dtype)
        self.params["weight"] = init.he_normal((out_channels, in_channels // groups, kh, kw), self.dtype)
        if bias:
            self.params["bias"] = init.zeros((out_channels,), self.dtype)
        self._cache = None

    def _forward(self, x, relu):
        """Convolve x; with relu, each output block takes max(., 0) too, while in cache."""
        x = check_input(x, "Conv2d", 4, self.in_channels)
        with errors_named("Conv2d"):
            out, self._cache = conv2d_forward(x, self.params["weight"], self.params.get("bias"), self.stride,
                                              self.padding, self.dilation, self.groups, relu=relu)
        return out

    def backward(self, dout, input_grad=True):
        """The input gradient, from the output gradient; fills ``grads``.

        Parameters
        ----------
        dout : ndarray, shape (N, out_channels, OH, OW)
            The gradient of the last forward's output.
        input_grad : bool, default True
            With False only the weights' gradients are computed (see ``backward_params``).

        Returns
        -------
        dx : ndarray, shape (N, in_channels, H, W), or None
            None when input_grad is False.
        """
        if self._cache is None:
            raise backward_before_forward("Conv2d")
        with errors_named("Conv2d"):
            dx, dw, db = conv2d_backward(dout, self._cache, input_grad)
        self.grads["weight"] = dw
        if db is not None:
            self.grads["bias"] = db
        return dx

    def backward_params(self, dout):
        self.backward(dout, input_grad=False)

    def config(self):
        return {"in_channels": self.in_channels, "out_channels": self.out_channels,
                "kernel_size": list(self.kernel_size), "stride": jsonable(self.stride),
                "padding": jsonable(self.padding), "dilation": jsonable(self.dilation),
                "groups": self.groups, "bias": "bias" in self.params, "dtype": self.dtype.name}


@register_layer
class ConvTranspose2d(Layer):
    """2-D transposed convolution with PyTorch's arguments and weight layout (col2im as a layer).

    Maps an (N, in_channels, H, W) input to an (N, out_channels, OH, OW) output, with
    OH = (H - 1)*stride - 2*padding + dilation*(KH - 1) + output_padding + 1.

    Parameters
    ----------
    in_channels : int
        The input's channels.
    out_channels : int
        The output's channels.
    kernel_size : int or pair of int
        (KH, KW).
    stride : int or pair of int, default 1
        (SH, SW).
    padding : int or pair of int, default 0
        (PH, PW), cropped from each side of the full output.
    output_padding : int or pair of int, default 0
        Rows and columns added at the bottom and right (smaller than the stride or the dilation).
    groups : int, default 1
        in_channels and out_channels both divisible by it.
    bias : bool, default True
        Whether the layer has a bias.
    dilation : int or pair of int, default 1
        (DH, DW), the spacing of the kernel's taps.
    dtype : dtype, default float32
        The parameters' dtype.

    Attributes
    ----------
    params : dict of str to ndarray
        ``weight``, shape (in_channels, out_channels // groups, KH, KW), He-normal
        initialised; ``bias``, shape (out_channels,), zeros (without bias=False).
    """

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0, output_padding=0,
                 groups=1, bias=True, dilation=1, dtype=np.float32):
        super().__init__()
        with errors_named("ConvTranspose2d"):
            kh, kw = pair(kernel_size, "kernel_size", 1)
            pair(stride, "stride", 1), pair(dilation, "dilation", 1), pair(padding, "padding")
            pair(output_padding, "output_padding")
        _check_channels("ConvTranspose2d", in_channels, out_channels, groups)
        self.in_channels, self.out_channels = int(in_channels), int(out_channels)
        self.kernel_size = (kh, kw)
        self.stride, self.padding, self.output_padding = stride, padding, output_padding
        self.dilation, self.groups = dilation, int(groups)
        self.dtype = np.dtype(dtype)
        self.params["weight"] = init.he_normal((in_channels, out_channels // groups, kh, kw), self.dtype)
        if bias:
            self.params["bias"] = init.zeros((out_channels,), self.dtype)
        self._cache = None

    def forward(self, x):
        x = check_input(x, "ConvTranspose2d", 4, self.in_channels)
        with errors_named("ConvTranspose2d"):
            out, self._cache = conv_transpose2d_forward(x, self.params["weight"], self.params.get("bias"),
                                                        self.stride, self.padding, self.output_padding,
                                                        self.groups, self.dilation)
        return out

    def backward(self, dout):
        if self._cache is None:
            raise backward_before_forward("ConvTranspose2d")
        with errors_named("ConvTranspose2d"):
            dx, dw, db = conv_transpose2d_backward(dout, self._cache)
        self.grads["weight"] = dw
        if db is not None:
            self.grads["bias"] = db
        return dx

    def config(self):
        return {"in_channels": self.in_channels, "out_channels": self.out_channels,
                "kernel_size": list(self.kernel_size), "stride": jsonable(self.stride),
                "padding": jsonable(self.padding), "output_padding": jsonable(self.output_padding),
                "groups": self.groups, "bias": "bias" in self.params, "dilation": jsonable(self.dilation),
                "dtype": self.dtype.name}
