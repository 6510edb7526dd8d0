"""Batch norm with the statistics of the global batch: the sums of every rank, all-reduced.

By default each rank normalises with its own shard's statistics (as PyTorch's DDP does). With
``sync_batch_norm(model, comm, weight)`` every BatchNorm layer of the model instead sums its
per-channel sums over the ranks, so the statistics, the running statistics and the gradients are
those of one process seeing the whole global batch. The forward pass all-reduces twice (the sum,
then the sum of squared deviations from the global mean: the two-pass variance is exact where
E[x^2] - E[x]^2 would cancel), the backward pass once (its two per-channel sums together).

The layers themselves are not changed: only the instances' ``forward``/``backward`` are
replaced, so the architecture, state dict and saved model stay a plain BatchNorm's.
"""

from __future__ import annotations

import types
from typing import Callable

import numpy as np

from ..layers.base import backward_before_forward, check_input
from ..layers.norm import _BatchNorm


def sync_batch_norm(model, comm, weight: Callable[[], float]) -> int:
    """Make every BatchNorm layer of model use global batch statistics; returns how many.

    comm   : a ``numcnn.distributed.Comm``
    weight : this rank's share of the current global batch, n_rank / n_global (the loss on a
             rank is its shard's mean, so its gradients are 1 / weight times its share)
    """
    count = 0
    for _, layer in model.named_layers():
        if isinstance(layer, _BatchNorm):
            layer.forward = types.MethodType(_forward_factory(comm), layer)
            layer.backward = types.MethodType(_backward_factory(comm, weight), layer)
            count += 1
    return count


def _forward_factory(comm):
    def forward(self, x):
        """x: (N_rank, C, *spatial) -> same shape; training mode uses the global batch's statistics."""
        if not self.training:
            return type(self).forward(self, x)
        name = type(self).__name__
        x = check_input(x, name, self.ranks, self.num_features)
        self.buffers["num_batches_tracked"] += 1
        dtype = x.dtype
        axes = (0,) + tuple(range(2, x.ndim))
        shape = (1, -1) + (1,) * (x.ndim - 2)
        sums = np.empty(self.num_features + 1, dtype)
        sums[:-1] = x.sum(axis=axes)
        sums[-1] = x.size // x.shape[1]
        comm.allreduce_sum(sums, f"{name} statistics")
        count = int(round(float(sums[-1])))
        mean = sums[:-1] / dtype.type(count)
        x_hat = x - mean.reshape(shape)
        squares = np.ascontiguousarray(np.square(x_hat).sum(axis=axes))
        var = comm.allreduce_sum(squares, f"{name} statistics") / dtype.type(count)
        factor = 1.0 / float(self.buffers["num_batches_tracked"]) if self.momentum is None else self.momentum
        for key, stat, scale in (("running_mean", mean, 1.0), ("running_var", var, count / max(count - 1, 1))):
            old = self.buffers[key]
            self.buffers[key] = ((1 - factor) * old + factor * stat * scale).astype(old.dtype, copy=False)
        inv_std = (1 / np.sqrt(var + dtype.type(self.eps))).astype(dtype, copy=False)
        w = self.params["weight"].astype(dtype, copy=False)
        x_hat *= inv_std.reshape(shape)
        out = x_hat * w.reshape(shape)
        out += self.params["bias"].astype(dtype, copy=False).reshape(shape)
        self._cache = (x_hat, inv_std, w, True, axes, shape, count)
        return out

    return forward


def _backward_factory(comm, weight):
    def backward(self, dout):
        """dout: (N_rank, C, *spatial) -> dx, same shape; grads["weight"], grads["bias"] stay
        this rank's own (the gradient all-reduce sums them with the others)."""
        name = type(self).__name__
        if self._cache is None:
            raise backward_before_forward(name)
        if len(self._cache) == 6:  # an eval-mode forward: the layer's own backward
            return type(self).backward(self, dout)
        x_hat, inv_std, w, _, axes, shape, count = self._cache
        dout = check_input(dout, name, x_hat.ndim)
        c = x_hat.shape[1]
        dbias, dweight = dout.sum(axis=axes), (dout * x_hat).sum(axis=axes)
        self.grads["weight"], self.grads["bias"] = dweight, dbias
        # This rank's dout is the gradient of its shard's mean loss, 1/share times its part of
        # the global mean's; the sums are all-reduced at the global scale and scaled back.
        share = weight()
        total = np.concatenate([dbias, dweight]) * dout.dtype.type(share)
        comm.allreduce_sum(total, f"{name} gradient sums")
        total /= dout.dtype.type(share)
        offset = (total[:c] / count).reshape(shape)
        slope = (total[c:] / count).reshape(shape)
        dx = x_hat * slope
        np.subtract(dout, dx, out=dx)
        dx -= offset
        dx *= (w * inv_std).reshape(shape)
        return dx

    return backward
