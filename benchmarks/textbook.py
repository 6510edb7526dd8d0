"""The textbook CNN ("Deep Learning from Scratch", ch. 7), written out again as the baseline
that ``numcnn bench`` measures against.

This is the plain algorithm, not numcnn's: im2col copies every patch into a
(N*out_h*out_w, C*FH*FW) matrix, the convolution is one GEMM ``col @ col_W``, and the result
is transposed back to NCHW. One flaw is fixed on purpose so that precisions compare fairly:
every buffer takes the input's dtype, where the book allocates float64. Everything else (the
copies, the output transposes, zero padding in pooling) is kept as the book has it. Average
pooling is not in the book; ``AvgPooling`` applies the same column approach with a mean.

It is not part of the installed package: nothing in the library uses it. ``numcnn bench``
loads this file by path from a source checkout (``--textbook PATH`` or ``NUMCNN_TEXTBOOK``
point it elsewhere); scripts here can simply ``from textbook import Convolution, im2col``.
"""

from __future__ import annotations

import numpy as np


# -- im2col / col2im ---------------------------------------------------------------------------
def im2col(input_data, filter_h, filter_w, stride=1, pad=0):
    """Unfold every filter-sized patch into one row.

    input_data: (N, C, H, W)
    returns   : col (N*out_h*out_w, C*filter_h*filter_w), rows ordered (n, oy, ox)
    """
    N, C, H, W = input_data.shape
    out_h = (H + 2 * pad - filter_h) // stride + 1
    out_w = (W + 2 * pad - filter_w) // stride + 1

    img = np.pad(input_data, [(0, 0), (0, 0), (pad, pad), (pad, pad)], "constant")
    col = np.zeros((N, C, filter_h, filter_w, out_h, out_w), dtype=img.dtype)

    # One strided slice per kernel offset (y, x) fills that offset for every output pixel.
    for y in range(filter_h):
        y_max = y + stride * out_h
        for x in range(filter_w):
            x_max = x + stride * out_w
            col[:, :, y, x, :, :] = img[:, :, y:y_max:stride, x:x_max:stride]

    return col.transpose(0, 4, 5, 1, 2, 3).reshape(N * out_h * out_w, -1)


def col2im(col, input_shape, filter_h, filter_w, stride=1, pad=0):
    """Fold rows back into an image, adding where patches overlap; the inverse layout of im2col.

    col        : (N*out_h*out_w, C*filter_h*filter_w)
    input_shape: (N, C, H, W)
    returns    : (N, C, H, W)
    """
    N, C, H, W = input_shape
    out_h = (H + 2 * pad - filter_h) // stride + 1
    out_w = (W + 2 * pad - filter_w) // stride + 1
    col = col.reshape(N, out_h, out_w, C, filter_h, filter_w).transpose(0, 3, 4, 5, 1, 2)

    # stride - 1 extra rows/cols so the last strided slice always fits.
    img = np.zeros((N, C, H + 2 * pad + stride - 1, W + 2 * pad + stride - 1), dtype=col.dtype)
    for y in range(filter_h):
        y_max = y + stride * out_h
        for x in range(filter_w):
            x_max = x + stride * out_w
            img[:, :, y:y_max:stride, x:x_max:stride] += col[:, :, y, x, :, :]

    return img[:, :, pad:H + pad, pad:W + pad]


# -- layers ------------------------------------------------------------------------------------
class Convolution:
    """W: (FN, C, FH, FW), b: (FN,); x (N, C, H, W) -> (N, FN, out_h, out_w)."""

    def __init__(self, W, b, stride=1, pad=0):
        self.W, self.b = W, b
        self.stride, self.pad = stride, pad
        self.x = self.col = self.col_W = None
        self.dW = self.db = None

    def forward(self, x):
        FN, C, FH, FW = self.W.shape
        N, C, H, W = x.shape
        out_h = 1 + (H + 2 * self.pad - FH) // self.stride
        out_w = 1 + (W + 2 * self.pad - FW) // self.stride

        col = im2col(x, FH, FW, self.stride, self.pad)
        col_W = self.W.reshape(FN, -1).T
        out = col @ col_W + self.b
        out = out.reshape(N, out_h, out_w, -1).transpose(0, 3, 1, 2)

        self.x, self.col, self.col_W = x, col, col_W
        return out

    def backward(self, dout):
        FN, C, FH, FW = self.W.shape
        dout = dout.transpose(0, 2, 3, 1).reshape(-1, FN)

        self.db = np.sum(dout, axis=0)
        self.dW = (self.col.T @ dout).transpose(1, 0).reshape(FN, C, FH, FW)

        dcol = dout @ self.col_W.T
        return col2im(dcol, self.x.shape, FH, FW, self.stride, self.pad)


class Pooling:
    """Max pooling over pool_h x pool_w windows (zero padding, as in the book)."""

    def __init__(self, pool_h, pool_w, stride=1, pad=0):
        self.pool_h, self.pool_w = pool_h, pool_w
        self.stride, self.pad = stride, pad
        self.x = self.arg_max = None

    def _windows(self, x):
        """One row per (n, oy, ox, c) window: (N*out_h*out_w*C, pool_h*pool_w), and the
        (N, out_h, out_w, C) shape its row results fold back into."""
        N, C, H, W = x.shape
        out_h = 1 + (H + 2 * self.pad - self.pool_h) // self.stride
        out_w = 1 + (W + 2 * self.pad - self.pool_w) // self.stride
        col = im2col(x, self.pool_h, self.pool_w, self.stride, self.pad)
        return col.reshape(-1, self.pool_h * self.pool_w), (N, out_h, out_w, C)

    def forward(self, x):
        col, out_shape = self._windows(x)
        arg_max = np.argmax(col, axis=1)
        out = np.max(col, axis=1)
        out = out.reshape(out_shape).transpose(0, 3, 1, 2)

        self.x, self.arg_max = x, arg_max
        return out

    def backward(self, dout):
        dout = dout.transpose(0, 2, 3, 1)

        pool_size = self.pool_h * self.pool_w
        dmax = np.zeros((dout.size, pool_size), dtype=dout.dtype)
        dmax[np.arange(self.arg_max.size), self.arg_max.flatten()] = dout.flatten()
        dmax = dmax.reshape(dout.shape + (pool_size,))

        dcol = dmax.reshape(dmax.shape[0] * dmax.shape[1] * dmax.shape[2], -1)
        return col2im(dcol, self.x.shape, self.pool_h, self.pool_w, self.stride, self.pad)


class AvgPooling(Pooling):
    """Average pooling in the book's style: the same window rows, a mean instead of a max;
    padding counts as zeros in the mean (PyTorch's count_include_pad=True)."""

    def forward(self, x):
        col, out_shape = self._windows(x)
        out = np.mean(col, axis=1)

        self.x = x
        return out.reshape(out_shape).transpose(0, 3, 1, 2)

    def backward(self, dout):
        dout = dout.transpose(0, 2, 3, 1)

        pool_size = self.pool_h * self.pool_w
        share = dout.reshape(-1, 1) / dout.dtype.type(pool_size)
        dcol = np.repeat(share, pool_size, axis=1)

        dcol = dcol.reshape(dout.shape[0] * dout.shape[1] * dout.shape[2], -1)
        return col2im(dcol, self.x.shape, self.pool_h, self.pool_w, self.stride, self.pad)


class Relu:
    def __init__(self):
        self.mask = None

    def forward(self, x):
        self.mask = x <= 0
        out = x.copy()
        out[self.mask] = 0
        return out

    def backward(self, dout):
        dout[self.mask] = 0
        return dout


class Affine:
    """W: (in, out) as in the book (transposed from PyTorch), b: (out,); flattens 4-D input."""

    def __init__(self, W, b):
        self.W, self.b = W, b
        self.x = self.original_x_shape = None
        self.dW = self.db = None

    def forward(self, x):
        self.original_x_shape = x.shape
        x = x.reshape(x.shape[0], -1)
        self.x = x
        return x @ self.W + self.b

    def backward(self, dout):
        dx = dout @ self.W.T
        self.dW = self.x.T @ dout
        self.db = np.sum(dout, axis=0)
        return dx.reshape(*self.original_x_shape)


class Dropout:
    """The book's dropout: drop with probability ratio in training, scale by (1 - ratio) in test."""

    def __init__(self, dropout_ratio=0.5):
        self.dropout_ratio = dropout_ratio
        self.mask = None

    def forward(self, x, train_flg=True):
        if train_flg:
            self.mask = np.random.rand(*x.shape) > self.dropout_ratio
            return x * self.mask
        return x * x.dtype.type(1.0 - self.dropout_ratio)

    def backward(self, dout):
        return dout * self.mask


def softmax(x):
    x = x - np.max(x, axis=-1, keepdims=True)
    return np.exp(x) / np.sum(np.exp(x), axis=-1, keepdims=True)


def cross_entropy_error(y, t):
    """Mean cross-entropy of probabilities y (N, K) against labels t (N,)."""
    batch_size = y.shape[0]
    return -np.sum(np.log(y[np.arange(batch_size), t] + 1e-7)) / batch_size


class SoftmaxWithLoss:
    def __init__(self):
        self.y = self.t = None

    def forward(self, x, t):
        self.t = t
        self.y = softmax(x)
        return cross_entropy_error(self.y, t)

    def backward(self, dout=1):
        batch_size = self.t.shape[0]
        dx = self.y.copy()
        dx[np.arange(batch_size), self.t] -= 1
        return dx * dx.dtype.type(dout / batch_size)


class Adam:
    """The book's Adam: bias correction folded into the step size, eps 1e-7 outside the sqrt."""

    def __init__(self, lr=0.001, beta1=0.9, beta2=0.999):
        self.lr, self.beta1, self.beta2 = lr, beta1, beta2
        self.iter = 0
        self.m = self.v = None

    def update(self, params, grads):
        if self.m is None:
            self.m = {key: np.zeros_like(val) for key, val in params.items()}
            self.v = {key: np.zeros_like(val) for key, val in params.items()}
        self.iter += 1
        lr_t = self.lr * np.sqrt(1.0 - self.beta2 ** self.iter) / (1.0 - self.beta1 ** self.iter)
        lr_t = float(lr_t)  # a Python float keeps float32 params float32
        for key in params:
            self.m[key] += (1 - self.beta1) * (grads[key] - self.m[key])
            self.v[key] += (1 - self.beta2) * (grads[key] ** 2 - self.v[key])
            params[key] -= lr_t * self.m[key] / (np.sqrt(self.v[key]) + 1e-7)


# -- networks ----------------------------------------------------------------------------------
class LayerNet:
    """A chain of the layers above with SoftmaxWithLoss on top, as SimpleConvNet/DeepConvNet are
    written in the book: ``params``/``grads`` dicts keyed "W1", "b1", ... in layer order."""

    def __init__(self, layers):
        self.layers = layers
        self.last_layer = SoftmaxWithLoss()
        self.params = {}
        self._owners = []
        for layer in layers:
            if isinstance(layer, (Convolution, Affine)):
                i = len(self._owners) + 1
                self.params[f"W{i}"], self.params[f"b{i}"] = layer.W, layer.b
                self._owners.append(layer)

    def predict(self, x, train_flg=False):
        for layer in self.layers:
            x = layer.forward(x, train_flg) if isinstance(layer, Dropout) else layer.forward(x)
        return x

    def loss(self, x, t):
        return self.last_layer.forward(self.predict(x, train_flg=True), t)

    def gradient(self, x, t):
        self.loss(x, t)
        dout = self.last_layer.backward(1)
        for layer in reversed(self.layers):
            dout = layer.backward(dout)
        grads = {}
        for i, layer in enumerate(self._owners, start=1):
            grads[f"W{i}"], grads[f"b{i}"] = layer.dW, layer.db
        return grads
