"""Notebook 5, backward: the solutions of its exercises (the textbook's layer classes)."""

import numpy as np

import numcnn.functional as F


class Convolution:
    def __init__(self, W, b, stride=1, pad=0):
        self.W, self.b, self.stride, self.pad = W, b, stride, pad
        self.dW = self.db = None

    def forward(self, x):
        FN, C, FH, FW = self.W.shape
        N, _, H, W = x.shape
        out_h = (H + 2 * self.pad - FH) // self.stride + 1
        out_w = (W + 2 * self.pad - FW) // self.stride + 1
        self.x_shape = x.shape
        self.col = F.im2col(x, (FH, FW), self.stride, self.pad)      # (N*OH*OW, C*FH*FW)
        self.col_W = self.W.reshape(FN, -1).T                        # (C*FH*FW, FN)
        out = self.col @ self.col_W + self.b                          # (N*OH*OW, FN)
        return out.reshape(N, out_h, out_w, FN).transpose(0, 3, 1, 2)

    def backward(self, dout):
        FN, C, FH, FW = self.W.shape
        dout = dout.transpose(0, 2, 3, 1).reshape(-1, FN)            # rows like col's
        self.db = dout.sum(axis=0)
        self.dW = (self.col.T @ dout).T.reshape(FN, C, FH, FW)
        dcol = dout @ self.col_W.T
        return F.col2im(dcol, self.x_shape, (FH, FW), self.stride, self.pad)


class Pooling:
    def __init__(self, pool_h, pool_w, stride=1, pad=0):
        self.pool_h, self.pool_w, self.stride, self.pad = pool_h, pool_w, stride, pad

    def forward(self, x):
        N, C, H, W = x.shape
        out_h = (H + 2 * self.pad - self.pool_h) // self.stride + 1
        out_w = (W + 2 * self.pad - self.pool_w) // self.stride + 1
        col = F.im2col(x, (self.pool_h, self.pool_w), self.stride, self.pad)
        col = col.reshape(-1, self.pool_h * self.pool_w)              # one row per window and channel
        self.x_shape, self.arg_max = x.shape, np.argmax(col, axis=1)
        out = col[np.arange(len(col)), self.arg_max]
        return out.reshape(N, out_h, out_w, C).transpose(0, 3, 1, 2)

    def backward(self, dout):
        dout = dout.transpose(0, 2, 3, 1).ravel()                     # in the order of col's rows
        dmax = np.zeros((dout.size, self.pool_h * self.pool_w))
        dmax[np.arange(dout.size), self.arg_max] = dout               # each gradient to its winner
        dcol = dmax.reshape(-1, self.x_shape[1] * self.pool_h * self.pool_w)
        return F.col2im(dcol, self.x_shape, (self.pool_h, self.pool_w), self.stride, self.pad)


def predict(x, params):
    conv = Convolution(params["W1"], params["b1"])
    pool = Pooling(2, 2, stride=2)
    h = pool.forward(np.maximum(conv.forward(x), 0))
    h = np.maximum(h.reshape(len(x), -1) @ params["W2"] + params["b2"], 0)
    return h @ params["W3"] + params["b3"]
