"""The calls that are timed, one per implementation: numcnn, PyTorch and the textbook code.

For a layer workload, ``layer_runner`` gives a function of no arguments returning the outputs
(out; with fwd+bwd also the input gradient, then dweight and dbias for a conv). For a network,
``TRAINERS[impl]`` gives an object with ``step(x, y)`` (forward, loss, backward, Adam update)
and ``gradients(x, y)`` (logits and every parameter's gradient, no update: what is compared).

torch is imported by name, on demand (``import_torch``); the library never imports it. The
textbook code is not part of the package and is loaded from its file (``load_textbook``).
"""

from __future__ import annotations

import importlib
import importlib.util

import numpy as np

from ..backend import host_copy, to_numpy
from ..layers import AvgPool2d, Conv2d, MaxPool2d, SoftmaxCrossEntropy
from ..optim import Adam
from ..inference import to_model_device
from .translate import to_textbook, to_torch
from .workloads import LayerCase

IMPLS = ("numcnn", "torch", "textbook")
LR = 1e-3


def import_torch(threads: int | None = None):
    """PyTorch with ``threads`` intra-op threads; None leaves torch's own default."""
    torch = importlib.import_module("torch")
    if threads is not None:
        torch.set_num_threads(threads)
    return torch


def load_textbook(path: str):
    """The module in benchmarks/textbook.py (or wherever path points)."""
    spec = importlib.util.spec_from_file_location("numcnn_bench_textbook", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# -- layers --------------------------------------------------------------------------------------
def layer_runner(impl: str, case: LayerCase, a: dict, mode: str, lib=None, gpu=None):
    """a: the arrays of ``workloads.layer_inputs``; lib: torch or the textbook module;
    gpu: a ``bench.gpu`` object to run on (None: the CPU)."""
    if gpu is not None and impl == "numcnn":
        a = {key: gpu.to(value) for key, value in a.items()}
    run = {"numcnn": _numcnn_layer, "torch": _torch_layer, "textbook": _textbook_layer}[impl]
    return run(case, a, mode, lib, gpu) if impl == "torch" else run(case, a, mode, lib)


def _numcnn_layer(case: LayerCase, a, mode: str, lib=None):
    """The public layer, as a user runs it: forward, then backward for the input gradient."""
    x, dout = a["x"], a["dout"]
    if case.op == "conv":
        layer = Conv2d(case.c, case.f, case.k, case.stride, case.pad, groups=case.groups, dtype=x.dtype)
        layer.params["weight"], layer.params["bias"] = a["w"], a["b"]
    elif case.op == "max_pool":
        layer = MaxPool2d(case.k, case.stride, case.pad)
    else:
        layer = AvgPool2d(case.k, case.stride, case.pad, count_include_pad=True)
    grads = ("weight", "bias") if case.op == "conv" else ()

    def run():
        out = layer.forward(x)
        if mode == "fwd":
            return (out,)
        return (out, layer.backward(dout), *(layer.grads[name] for name in grads))
    return run


def _torch_layer(case: LayerCase, a, mode: str, torch, gpu=None):
    tf = torch.nn.functional
    tensor = torch.from_numpy if gpu is None else gpu.to
    x, dout = tensor(a["x"]), tensor(a["dout"])
    if case.op == "conv":
        leaves = (x, tensor(a["w"]), tensor(a["b"]))

        def op(x, w, b):
            return tf.conv2d(x, w, b, case.stride, case.pad, 1, case.groups)
    elif case.op == "max_pool":
        leaves = (x,)

        def op(x):
            return tf.max_pool2d(x, case.k, case.stride, case.pad)
    else:
        leaves = (x,)

        def op(x):
            return tf.avg_pool2d(x, case.k, case.stride, case.pad, count_include_pad=True)
    if mode == "fwd":
        def run():
            with torch.no_grad():  # the inference forward: no graph kept
                return (op(*leaves),)
        return run
    leaves = tuple(t.clone().requires_grad_() for t in leaves)

    def run():
        with torch.enable_grad():
            out = op(*leaves)
            return (out, *torch.autograd.grad(out, leaves, dout))
    return run


def _textbook_layer(case: LayerCase, a, mode: str, tb):
    x, dout = a["x"], a["dout"]
    if case.op == "conv":
        # The book has no groups: one Convolution per group, outputs and gradients concatenated.
        g = case.groups
        cg, fg = case.c // g, case.f // g
        convs = [tb.Convolution(a["w"][i * fg:(i + 1) * fg], a["b"][i * fg:(i + 1) * fg], case.stride, case.pad)
                 for i in range(g)]

        def join(parts, axis):
            return parts[0] if len(parts) == 1 else np.concatenate(parts, axis=axis)

        def run():
            out = join([conv.forward(x[:, i * cg:(i + 1) * cg]) for i, conv in enumerate(convs)], 1)
            if mode == "fwd":
                return (out,)
            dx = join([conv.backward(dout[:, i * fg:(i + 1) * fg]) for i, conv in enumerate(convs)], 1)
            return out, dx, join([c.dW for c in convs], 0), join([c.db for c in convs], 0)
        return run
    pool = (tb.Pooling if case.op == "max_pool" else tb.AvgPooling)(case.k, case.k, case.stride, case.pad)

    def run():
        out = pool.forward(x)
        return (out,) if mode == "fwd" else (out, pool.backward(dout))
    return run


# -- networks ------------------------------------------------------------------------------------
class _Trainer:
    """A step is the loss's backward pass (``_backward``, by the subclass) and the update."""

    def step(self, x, y):
        self._backward(x, y)
        self.optimizer.step()


class NumcnnTrainer(_Trainer):
    """The model itself, SoftmaxCrossEntropy and numcnn.optim.Adam; on gpu's device if given
    (each batch is moved there inside the step, as numcnn's Trainer moves it)."""

    def __init__(self, model, lib=None, gpu=None):
        if gpu is not None:
            model.to(gpu.device)
        self.model, self.loss, self.optimizer = model, SoftmaxCrossEntropy(), Adam(model, lr=LR)

    def _backward(self, x, y):
        x, y = to_model_device(self.model, x, y)
        logits = self.model.forward(x)
        self.loss.forward(logits, y)
        self.model.backward_params(self.loss.backward())
        return logits

    def gradients(self, x, y):
        logits = host_copy(self._backward(x, y))
        return (logits, *(to_numpy(owner.grads[key]) for _, owner, key in self.model.named_parameters()))


class TorchTrainer(_Trainer):
    """The model rebuilt in torch (``to_torch``), cross_entropy and torch.optim.Adam; on gpu's
    device if given (each batch moved there inside the step)."""

    def __init__(self, model, torch, gpu=None):
        self.torch, self.net = torch, to_torch(torch, model)
        self.tensor = torch.from_numpy if gpu is None else gpu.to
        if gpu is not None:
            self.net.to(gpu.device)
        self.optimizer = torch.optim.Adam(self.net.parameters(), lr=LR)

    def _backward(self, x, y):
        self.optimizer.zero_grad(set_to_none=True)
        logits = self.net(self.tensor(x))
        self.torch.nn.functional.cross_entropy(logits, self.tensor(y)).backward()
        return logits

    def gradients(self, x, y):
        logits = self._backward(x, y)
        return (logits.detach().cpu().numpy(), *(param.grad.cpu().numpy() for param in self.net.parameters()))


class TextbookTrainer:
    """The model rebuilt from the book's layers (``to_textbook``), with the book's Adam."""

    def __init__(self, model, tb, gpu=None):
        if gpu is not None:
            raise ValueError("the textbook code runs on the CPU only")
        self.book, self.optimizer = to_textbook(tb, model), tb.Adam(lr=LR)

    def step(self, x, y):
        self.optimizer.update(self.book.params, self.book.gradient(x, y))

    def gradients(self, x, y):
        logits = self.book.predict(x, train_flg=True)
        grads = self.book.gradient(x, y)
        pairs = ((grads[f"W{i}"], grads[f"b{i}"]) for i in range(1, len(grads) // 2 + 1))
        # In torch's layout: the book's Affine keeps W as (in, out).
        return (logits, *(g for w, b in pairs for g in (w.T if w.ndim == 2 else w, b)))


TRAINERS = {"numcnn": NumcnnTrainer, "torch": TorchTrainer, "textbook": TextbookTrainer}
