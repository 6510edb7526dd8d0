"""``numcnn bench``: time numcnn's kernels and training steps against PyTorch and the textbook code.

    numcnn bench                         # every workload, float32 and float64, fwd and fwd+bwd
    numcnn bench --only L3,DW --dtype float32 --repeat 15 --json out.json
    numcnn bench --epoch                 # one epoch of SimpleConvNet on Fashion-MNIST
    numcnn bench --memory                # peak memory of DeepConvNet training, fresh processes

How it measures, so the numbers can be trusted:

* Everything runs in one process with the implementations interleaved (numcnn, torch, textbook,
  numcnn, ...) so that background load hits them alike; each time is the median of ``--repeat``
  runs after ``--warmup`` runs (``--stat min``: the fastest run, steadier on a busy machine).
  torch gets as many threads as NumPy's BLAS.
* The first run of every case compares the outputs (and gradients) of all implementations; a
  mismatch is flagged in the table and makes the exit code 1, so a wrong kernel is never timed
  silently.
* GFLOP/s counts 2 flops per multiply-add of the convolution (3x forward for fwd+bwd; for a
  training step, of every Conv2d and Linear) and is given as a share of a large ``np.matmul``
  measured in the same run, the most this machine's BLAS can do.
* Peak memory is the rise of the resident set above its level just before each
  implementation's first call (the kernel's high-water mark, reset per call; a 1 ms sampling
  thread where that is not available). ``--memory`` measures training in fresh processes.

torch is optional and imported only here, lazily; the library itself never imports it.
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import gc
import glob
import importlib
import json
import math
import os
import platform
import resource
import statistics
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, replace

import numpy as np

from . import _textbook as tb
from .functional import (avg_pool2d_backward, avg_pool2d_forward, conv2d_backward, conv2d_forward,
                         max_pool2d_backward, max_pool2d_forward)
from .functional import output_size, pair
from .layers import AvgPool2d, Conv2d, Dropout, Flatten, Linear, MaxPool2d, ReLU, SoftmaxCrossEntropy

IMPLS = ("numcnn", "torch", "textbook")
TOL = {"float32": 1e-4, "float64": 1e-10}          # max |a - b| / max |reference|, per array
# Logits and gradients of a whole network. In float32 a pre-activation within rounding of a ReLU
# kink (or a max-pool near-tie) can fall either way, moving a few gradient entries by up to
# ~3e-3 of the largest; a wrong kernel is off by far more.
TOL_NET = {"float32": 1e-2, "float64": 1e-9}
LR = 1e-3


# -- workloads ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class LayerCase:
    """One layer on one input: x (n, c, h, h); conv weight (f, c // groups, k, k)."""

    name: str
    op: str                 # "conv", "max_pool" or "avg_pool"
    n: int
    c: int
    h: int
    k: int
    f: int = 0
    stride: int = 1
    pad: int = 0
    groups: int = 1

    def describe(self) -> str:
        extra = "".join(f" {label}{value}" for label, value, default in
                        (("stride ", self.stride, 1 if self.op == "conv" else self.k),
                         ("pad ", self.pad, 0), ("groups ", self.groups, 1)) if value != default)
        if self.op == "conv":
            return f"conv   N={self.n} C={self.c} {self.h}x{self.h} -> F={self.f} {self.k}x{self.k}{extra}"
        return f"{self.op.replace('_', ' ')} N={self.n} C={self.c} {self.h}x{self.h}, {self.k}x{self.k}{extra}"

    def out_side(self) -> int:
        return output_size(self.h, self.k, self.stride, self.pad, self.pad, 1)

    def flops(self, mode: str) -> float | None:
        """2 * multiply-adds of the convolution; backward is two more products of that size."""
        if self.op != "conv":
            return None
        fwd = 2.0 * self.n * self.f * self.out_side() ** 2 * (self.c // self.groups) * self.k ** 2
        return fwd if mode == "fwd" else 3 * fwd


@dataclass(frozen=True)
class NetCase:
    """One training step (forward, loss, backward, optimizer update) of a zoo network."""

    name: str
    builder: str            # the numcnn.zoo function
    batch: int

    def describe(self) -> str:
        return f"train step, batch {self.batch}, 1x28x28 input, {self.builder}()"


LAYER_CASES = [
    LayerCase("L1", "conv", 100, 1, 28, 5, f=30),
    LayerCase("L2", "conv", 100, 16, 28, 3, f=16, pad=1),
    LayerCase("L3", "conv", 64, 64, 32, 3, f=64, pad=1),
    LayerCase("L4", "conv", 32, 128, 16, 3, f=128, stride=2, pad=1),
    LayerCase("P1", "max_pool", 100, 30, 24, 2, stride=2),
    LayerCase("P2", "avg_pool", 64, 64, 32, 3, stride=2, pad=1),
    LayerCase("C1x1", "conv", 64, 64, 32, 1, f=128),
    LayerCase("DW", "conv", 64, 64, 32, 3, f=64, pad=1, groups=64),
]
NET_CASES = [NetCase("SimpleConvNet", "simple_convnet", 100), NetCase("DeepConvNet", "deep_convnet", 100)]


def _quick(case):
    """The same workload shrunk to a few kilobytes, for smoke tests."""
    if isinstance(case, NetCase):
        return replace(case, batch=4)
    c = min(case.c, 8)
    return replace(case, n=2, c=c, h=min(case.h, 8), f=min(case.f, 8) if case.f else 0,
                   groups=c if case.groups > 1 else 1)


# -- the machine: threads, GEMM peak, memory ---------------------------------------------------
def blas_threads() -> int:
    """Threads NumPy's BLAS uses: asked of OpenBLAS itself where possible."""
    libs = glob.glob(os.path.join(os.path.dirname(np.__file__), "..", "numpy.libs", "*openblas*"))
    libs += glob.glob(os.path.join(os.path.dirname(np.__file__), ".dylibs", "*openblas*"))
    for path in libs:
        try:
            lib = ctypes.CDLL(path)
        except OSError:
            continue
        for symbol in ("scipy_openblas_get_num_threads64_", "scipy_openblas_get_num_threads",
                       "openblas_get_num_threads64_", "openblas_get_num_threads"):
            if hasattr(lib, symbol):
                return int(getattr(lib, symbol)())
    for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        if os.environ.get(var, "").isdigit():
            return int(os.environ[var])
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def gemm_peak(dtype, n: int, warmup: int, repeat: int, stat=statistics.median) -> float:
    """GFLOP/s of an n x n x n np.matmul, from the stat (median) of repeat runs."""
    rng = np.random.default_rng(0)
    a, b = (rng.standard_normal((n, n)).astype(dtype) for _ in range(2))
    out = np.empty((n, n), dtype=dtype)
    times = []
    for i in range(warmup + repeat):
        start = time.perf_counter()
        np.matmul(a, b, out=out)
        if i >= warmup:
            times.append(time.perf_counter() - start)
    return 2.0 * n ** 3 / stat(times) / 1e9


def _malloc_trim() -> None:
    # Give freed heap pages back to the OS, so the baseline RSS holds only live memory.
    try:
        ctypes.CDLL(None).malloc_trim(0)
    except (OSError, AttributeError):
        pass


def _status_kb(field: str) -> int | None:
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return None


def _reset_high_water_mark() -> bool:
    try:
        with open("/proc/self/clear_refs", "w") as refs:
            refs.write("5")  # Linux >= 4.0: reset VmHWM to the current RSS
        return True
    except OSError:
        return False


class PeakRSS:
    """Context manager: ``.mb`` is the peak resident memory above the level at entry, in MiB
    (None where /proc is missing)."""

    def __enter__(self):
        _malloc_trim()
        self.base = _status_kb("VmRSS")
        self.mb = None
        self._use_hwm = self.base is not None and _reset_high_water_mark()
        self._peak = self.base or 0
        self._stop = threading.Event()
        if self.base is not None and not self._use_hwm:
            self._thread = threading.Thread(target=self._sample, daemon=True)
            self._thread.start()
        return self

    def _sample(self):
        while not self._stop.is_set():
            self._peak = max(self._peak, _status_kb("VmRSS") or 0)
            time.sleep(0.001)

    def __exit__(self, *exc):
        if self.base is None:
            return
        if self._use_hwm:
            self._peak = _status_kb("VmHWM") or 0
        else:
            self._stop.set()
            self._thread.join()
        self.mb = max(0, self._peak - self.base) / 1024


# -- torch, imported lazily --------------------------------------------------------------------
def _import_torch(threads: int):
    """PyTorch, the reference timed beside numcnn, or None when it is not installed.

    Only this benchmark ever loads it, by name and on demand; the library never depends on it.
    """
    try:
        torch = importlib.import_module("torch")
    except ImportError:
        return None
    torch.set_num_threads(threads)
    return torch


def _to_numpy(value) -> np.ndarray:
    return value.detach().numpy() if hasattr(value, "detach") else np.asarray(value)


# -- layer cases: one runner per implementation --------------------------------------------------
def _layer_inputs(case: LayerCase, dtype, rng):
    x = rng.standard_normal((case.n, case.c, case.h, case.h)).astype(dtype)
    side = case.out_side()
    out_c = case.f if case.op == "conv" else case.c
    arrays = {"x": x, "dout": rng.standard_normal((case.n, out_c, side, side)).astype(dtype)}
    if case.op == "conv":
        fan_in = case.c // case.groups * case.k ** 2
        arrays["w"] = (rng.standard_normal((case.f, case.c // case.groups, case.k, case.k))
                       * np.sqrt(2.0 / fan_in)).astype(dtype)
        arrays["b"] = rng.standard_normal(case.f).astype(dtype)
    return arrays


def _numcnn_layer(case: LayerCase, a, mode: str):
    x, dout = a["x"], a["dout"]
    if case.op == "conv":
        def run():
            out, cache = conv2d_forward(x, a["w"], a["b"], case.stride, case.pad, 1, case.groups)
            return (out,) if mode == "fwd" else (out, *conv2d_backward(dout, cache))
    else:
        if case.op == "max_pool":
            forward, backward, extra = max_pool2d_forward, max_pool2d_backward, ()
        else:
            forward, backward, extra = avg_pool2d_forward, avg_pool2d_backward, (True,)

        def run():
            out, cache = forward(x, case.k, case.stride, case.pad, *extra)
            return (out,) if mode == "fwd" else (out, backward(dout, cache))
    return run


def _torch_layer(torch, case: LayerCase, a, mode: str):
    tf = torch.nn.functional
    x, dout = torch.from_numpy(a["x"]), torch.from_numpy(a["dout"])
    if case.op == "conv":
        leaves = (x, torch.from_numpy(a["w"]), torch.from_numpy(a["b"]))

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


def _textbook_layer(case: LayerCase, a, mode: str):
    x, dout = a["x"], a["dout"]
    if case.op == "conv":
        # The book has no groups: one Convolution per group, outputs and gradients concatenated.
        g = case.groups
        cg, fg = case.c // g, case.f // g
        convs = [tb.Convolution(a["w"][i * fg:(i + 1) * fg], a["b"][i * fg:(i + 1) * fg],
                                case.stride, case.pad) for i in range(g)]

        def join(parts, axis):
            return parts[0] if len(parts) == 1 else np.concatenate(parts, axis=axis)

        def run():
            out = join([conv.forward(x[:, i * cg:(i + 1) * cg]) for i, conv in enumerate(convs)], 1)
            if mode == "fwd":
                return (out,)
            dx = join([conv.backward(dout[:, i * fg:(i + 1) * fg]) for i, conv in enumerate(convs)], 1)
            return out, dx, join([c.dW for c in convs], 0), join([c.db for c in convs], 0)
        return run
    pool_class = tb.Pooling if case.op == "max_pool" else tb.AvgPooling
    pool = pool_class(case.k, case.k, case.stride, case.pad)

    def run():
        out = pool.forward(x)
        return (out,) if mode == "fwd" else (out, pool.backward(dout))
    return run


# -- network cases -------------------------------------------------------------------------------
def _leaves(model):
    """The model's layers in order, nested Sequentials flattened; None if it has branches."""
    from .model import Residual, Sequential
    result = []
    for layer in getattr(model, "layers", [model]):
        if isinstance(layer, Residual):
            return None
        if isinstance(layer, Sequential):
            inner = _leaves(layer)
            if inner is None:
                return None
            result += inner
        else:
            result.append(layer)
    return result


def _fallback_net(builder: str):
    """The book's networks from numcnn layers, used only while numcnn.zoo is unavailable."""
    from .model import Sequential
    if builder == "simple_convnet":
        return Sequential(Conv2d(1, 30, 5), ReLU(), MaxPool2d(2), Linear(4320, 100), ReLU(), Linear(100, 10))
    layers, c_in = [], 1
    for c_out, pads in ((16, (1, 1)), (32, (1, 2)), (64, (1, 1))):
        for p in pads:
            layers += [Conv2d(c_in, c_out, 3, padding=p), ReLU()]
            c_in = c_out
        layers.append(MaxPool2d(2))
    return Sequential(*layers, Linear(64 * 4 * 4, 50), ReLU(), Dropout(0.5), Linear(50, 10), Dropout(0.5))


def numcnn_net(builder: str, dtype):
    """(model, where it came from): numcnn.zoo's builder if importable, with params in dtype."""
    try:
        from . import zoo
        model, source = getattr(zoo, builder)(), f"numcnn.zoo.{builder}"
    except Exception as exc:  # zoo missing or broken: time the same network built here
        model, source = _fallback_net(builder), f"bench fallback ({type(exc).__name__} from numcnn.zoo)"
    for _, owner, key in model.named_parameters():
        owner.params[key] = owner.params[key].astype(dtype)
    for _, layer in model.named_layers():
        if hasattr(layer, "dtype"):
            layer.dtype = np.dtype(dtype)
    return model, source


def numcnn_optimizer(model):
    """(step function, label): numcnn.optim.Adam, or plain SGD written here if that is missing."""
    try:
        from . import optim
        opt = optim.Adam(model, lr=LR)
        return opt.step, "Adam"
    except Exception:
        def sgd_step():
            for _, owner, key in model.named_parameters():
                owner.params[key] -= owner.params[key].dtype.type(LR) * owner.grads[key]
        return sgd_step, "SGD"


def torch_optimizer(torch, net, label: str):
    """torch's optimizer of the same kind as numcnn's (see numcnn_optimizer)."""
    return (torch.optim.Adam if label == "Adam" else torch.optim.SGD)(net.parameters(), lr=LR)


def textbook_update(book, label: str):
    """The book's optimizer of the same kind as numcnn's, as a function of the gradients."""
    if label == "Adam":
        adam = tb.Adam(lr=LR)
        return lambda grads: adam.update(book.params, grads)

    def sgd(grads):
        for key in book.params:
            book.params[key] -= book.params[key].dtype.type(LR) * grads[key]
    return sgd


def torch_net(torch, layers, dtype):
    """The same network in torch, weights copied; None if a layer has no mirror here."""
    nn = torch.nn
    mods = []
    for layer in layers:
        if isinstance(layer, Conv2d):
            mods.append(nn.Conv2d(layer.in_channels, layer.out_channels, layer.kernel_size, layer.stride,
                                  layer.padding, layer.dilation, layer.groups, bias="bias" in layer.params))
        elif isinstance(layer, Linear):
            mods += [nn.Flatten(), nn.Linear(layer.in_features, layer.out_features, bias="bias" in layer.params)]
        elif isinstance(layer, ReLU):
            mods.append(nn.ReLU())
        elif isinstance(layer, MaxPool2d):
            mods.append(nn.MaxPool2d(layer.kernel_size, layer.stride, layer.padding))
        elif isinstance(layer, AvgPool2d):
            mods.append(nn.AvgPool2d(layer.kernel_size, layer.stride, layer.padding,
                                     count_include_pad=layer.count_include_pad))
        elif isinstance(layer, Flatten):
            mods.append(nn.Flatten())
        elif isinstance(layer, Dropout):
            mods.append(nn.Dropout(layer.p))
        else:
            return None
    net = nn.Sequential(*mods).to(torch.float32 if dtype == np.float32 else torch.float64)
    ours = [layer.params[key] for layer in layers for key in ("weight", "bias") if key in layer.params]
    with torch.no_grad():
        for param, value in zip(net.parameters(), ours, strict=True):
            param.copy_(torch.from_numpy(np.ascontiguousarray(value)))
    return net


def textbook_net(layers):
    """The same network from the book's layers, weights copied; None if it cannot be expressed."""
    book = []
    for layer in layers:
        if isinstance(layer, (Conv2d, Linear)) and "bias" not in layer.params:
            return None  # the book's layers always have a bias
        if isinstance(layer, Conv2d):
            if isinstance(layer.padding, str) or layer.groups != 1 or pair(layer.dilation, "dilation", 1) != (1, 1):
                return None
            (sh, sw), (ph, pw) = pair(layer.stride, "stride", 1), pair(layer.padding, "padding")
            if sh != sw or ph != pw:
                return None
            book.append(tb.Convolution(layer.params["weight"].copy(), layer.params["bias"].copy(), sh, ph))
        elif isinstance(layer, Linear):
            book.append(tb.Affine(layer.params["weight"].T.copy(), layer.params["bias"].copy()))
        elif isinstance(layer, ReLU):
            book.append(tb.Relu())
        elif isinstance(layer, MaxPool2d):
            kh, kw = pair(layer.kernel_size, "kernel_size", 1)
            (sh, sw), (ph, pw) = pair(layer.stride or layer.kernel_size, "stride", 1), pair(layer.padding, "padding")
            if sh != sw or ph != pw or ph:  # the book pads pools with zeros, not -inf
                return None
            book.append(tb.Pooling(kh, kw, sh, ph))
        elif isinstance(layer, Flatten):
            continue  # the book's Affine flattens its input itself
        elif isinstance(layer, Dropout):
            book.append(tb.Dropout(layer.p))
        else:
            return None
    return tb.LayerNet(book)


def _net_flops(layers, input_shape, batch) -> float | None:
    """Flops of forward + backward (3x the forward products) of every Conv2d and Linear."""
    x = np.zeros((1,) + tuple(input_shape), dtype=np.float32)
    fwd = 0.0
    try:
        for layer in layers:
            was_training = layer.training
            layer.eval()
            y = layer.forward(x)
            layer.train(was_training)
            if isinstance(layer, Conv2d):
                fwd += 2.0 * y.size * (layer.in_channels // layer.groups) * math.prod(layer.kernel_size)
            elif isinstance(layer, Linear):
                fwd += 2.0 * layer.in_features * layer.out_features
            x = y
    except Exception:
        return None
    return 3 * fwd * batch


class NetRunners:
    """One network in each implementation, sharing initial weights, plus a train step for each."""

    def __init__(self, case: NetCase, dtype, rng, torch, impls):
        self.model, self.source = numcnn_net(case.builder, dtype)
        self.layers = _leaves(self.model)
        self.x = rng.random((case.batch, 1, 28, 28)).astype(dtype)
        self.y = rng.integers(0, 10, case.batch)
        self.flops = _net_flops(self.layers, (1, 28, 28), case.batch) if self.layers else None
        # check_fns: logits and every parameter's gradient (PyTorch layout) with dropout off
        self.runners, self.check_fns = {}, {}

        step, self.optimizer = numcnn_optimizer(self.model)
        loss = SoftmaxCrossEntropy()

        def numcnn_step():
            loss.forward(self.model.forward(self.x), self.y)
            self.model.backward(loss.backward())
            step()
            return ()
        self.runners["numcnn"] = numcnn_step

        def numcnn_check():
            self.model.eval()
            logits = self.model.forward(self.x).copy()
            loss.forward(logits, self.y)
            self.model.backward(loss.backward())
            self.model.train()
            return (logits, *(owner.grads[key] for _, owner, key in self.model.named_parameters()))
        self.check_fns["numcnn"] = numcnn_check

        net = torch_net(torch, self.layers, dtype) if torch is not None and "torch" in impls and self.layers else None
        if net is not None:
            xt, yt = torch.from_numpy(self.x), torch.from_numpy(self.y)
            opt = torch_optimizer(torch, net, self.optimizer)

            def torch_step():
                opt.zero_grad(set_to_none=True)
                torch.nn.functional.cross_entropy(net(xt), yt).backward()
                opt.step()
                return ()

            def torch_check():
                net.eval()
                opt.zero_grad(set_to_none=True)
                logits = net(xt)
                torch.nn.functional.cross_entropy(logits, yt).backward()
                net.train()
                return (logits, *(param.grad for param in net.parameters()))
            self.runners["torch"], self.check_fns["torch"] = torch_step, torch_check

        book = textbook_net(self.layers) if "textbook" in impls and self.layers else None
        if book is not None:
            update = textbook_update(book, self.optimizer)

            def textbook_step():
                update(book.gradient(self.x, self.y))
                return ()

            def textbook_check():
                # The book's Dropout has no "off" (test mode scales by 1 - ratio): ratio 0 keeps all.
                drops = [layer for layer in book.layers if isinstance(layer, tb.Dropout)]
                ratios = [layer.dropout_ratio for layer in drops]
                for layer in drops:
                    layer.dropout_ratio = 0.0
                logits = book.predict(self.x, train_flg=True)
                grads = book.gradient(self.x, self.y)
                for layer, ratio in zip(drops, ratios):
                    layer.dropout_ratio = ratio
                weights = [grads[f"W{i}"] for i in range(1, len(grads) // 2 + 1)]
                biases = [grads[f"b{i}"] for i in range(1, len(grads) // 2 + 1)]
                as_torch = [w.T if w.ndim == 2 else w for w in weights]  # Affine keeps W as (in, out)
                return (logits, *(g for pair_ in zip(as_torch, biases) for g in pair_))
            self.runners["textbook"], self.check_fns["textbook"] = textbook_step, textbook_check


# -- timing and checking -------------------------------------------------------------------------
def _rel_err(ours, theirs) -> float:
    ours, theirs = np.asarray(ours, dtype=np.float64), np.asarray(theirs, dtype=np.float64)
    if ours.shape != theirs.shape:
        return math.inf
    if ours.size == 0:
        return 0.0
    return float(np.max(np.abs(ours - theirs)) / max(float(np.max(np.abs(theirs))), 1e-30))


def _compare(results: dict, tol: float) -> list[str]:
    """Names of implementations whose outputs differ from numcnn's by more than tol."""
    bad = []
    ref = results.get("numcnn")
    for impl, outs in results.items():
        if impl == "numcnn" or ref is None:
            continue
        worst = max((_rel_err(a, b) for a, b in zip(ref, outs)), default=0.0) if len(outs) == len(ref) else math.inf
        if worst > tol:
            bad.append(f"{impl} {worst:.1e}")
    return bad


def time_interleaved(runners: dict, warmup: int, repeat: int, check=None, memory: bool = True,
                     stat=statistics.median):
    """Seconds per implementation (the stat, median by default, over repeat runs), the
    implementations taking turns each repetition; and the peak MiB each adds during its first
    run, from the fresh state, so it counts everything a call allocates (reading the kernel's
    high-water mark costs nothing while the call runs).

    check(results) is called once with every implementation's first outputs (as NumPy)."""
    samples = {impl: [] for impl in runners}
    peak_mib = {}
    first = {}
    gc.collect()
    gc.disable()
    try:
        for i in range(warmup + repeat):
            for impl, run in runners.items():
                with PeakRSS() if i == 0 and memory else contextlib.nullcontext() as meter:
                    start = time.perf_counter()
                    result = run()
                    elapsed = time.perf_counter() - start
                if meter is not None:
                    peak_mib[impl] = meter.mb
                if i == 0 and check is not None:
                    first[impl] = tuple(_to_numpy(r).copy() for r in result)
                result = None
                if i >= warmup:
                    samples[impl].append(elapsed)
            if i == 0 and check is not None:
                check(first)
                first.clear()
    finally:
        gc.enable()
    return {impl: stat(times) for impl, times in samples.items()}, peak_mib


# -- the table ---------------------------------------------------------------------------------
COLUMNS = [("workload", 13, "<"), ("dtype", 7, "<"), ("mode", 7, "<"), ("numcnn ms", 10, ">"),
           ("torch ms", 10, ">"), ("textbk ms", 10, ">"), ("GFLOP/s", 8, ">"), ("%peak", 6, ">"),
           ("nc/torch", 9, ">"), ("tb/nc", 7, ">"), ("peak MiB nc/t/tb", 18, ">"), ("check", 0, "<")]


def _fmt(value, spec="{:.2f}") -> str:
    return "-" if value is None else spec.format(value)


def _fmt_ms(seconds) -> str:
    if seconds is None:
        return "-"
    ms = seconds * 1e3
    return f"{ms:.1f}" if ms >= 10 else f"{ms:.2f}" if ms >= 0.1 else f"{ms:.3f}"


def _row_cells(row: dict) -> list[str]:
    t = row["seconds"]
    mem = row["peak_mib"]
    mem_cell = "/".join(_fmt(mem.get(impl), "{:.0f}") for impl in IMPLS) if mem else "-"
    return [row["workload"], row["dtype"], row["mode"], _fmt_ms(t.get("numcnn")), _fmt_ms(t.get("torch")),
            _fmt_ms(t.get("textbook")), _fmt(row["gflops"], "{:.1f}"), _fmt(row["pct_peak"], "{:.0f}"),
            _fmt(row["numcnn_over_torch"]), _fmt(row["textbook_over_numcnn"]), mem_cell, row["check"]]


def _line(cells) -> str:
    return "  ".join(f"{cell:{align}{width}}" if width else cell
                     for cell, (_, width, align) in zip(cells, COLUMNS)).rstrip()


def _geomean(values):
    values = [v for v in values if v]
    return math.exp(sum(math.log(v) for v in values) / len(values)) if values else None


def summarize(rows, layer_names) -> list[tuple[str, str]]:
    """(key, text) summary lines over the layer workloads."""
    lines = []

    def select(dtype, mode, key):
        return [(r["workload"], r[key]) for r in rows if r["workload"] in layer_names
                and r["dtype"] == dtype and r["mode"] == mode and r[key] is not None]

    for dtype in ("float32", "float64"):
        pairs = select(dtype, "fwd+bwd", "numcnn_over_torch")
        if pairs:
            worst = max(pairs, key=lambda p: p[1])
            lines.append((f"{dtype}_fwdbwd_numcnn_over_torch",
                          f"{dtype} fwd+bwd numcnn/torch: geomean {_geomean([v for _, v in pairs]):.2f} over "
                          f"{len(pairs)} layer workloads, max {worst[1]:.2f} ({worst[0]})"))
    for mode in ("fwd+bwd", "fwd"):
        pairs = select("float32", mode, "textbook_over_numcnn")
        if pairs:
            lines.append((f"float32_{mode.replace('+', '')}_textbook_over_numcnn",
                          f"float32 {mode} textbook/numcnn: geomean {_geomean([v for _, v in pairs]):.2f} over "
                          f"{len(pairs)} layer workloads (numcnn is that many times faster)"))
    return lines


# -- the runs ----------------------------------------------------------------------------------
def run_table(args, torch, impls, peaks, meta) -> tuple[list, list, bool]:
    """Print the table row by row; returns (rows, summary lines, whether every check passed)."""
    cases = [c for c in LAYER_CASES + NET_CASES if args.only is None or c.name.lower() in args.only]
    if args.quick:
        cases = [_quick(c) for c in cases]
    dtypes = ["float32", "float64"] if args.dtype == "both" else [args.dtype]
    modes = ["fwd", "fwd+bwd"] if args.mode == "both" else ["fwd+bwd" if args.mode == "fwdbwd" else "fwd"]

    print("workloads:")
    for case in cases:
        print(f"  {case.name:<13} {case.describe()}")
    print()
    print(_line([name for name, _, _ in COLUMNS]))
    print(_line(["-" * max(width, 5) for _, width, _ in COLUMNS]))
    sys.stdout.flush()

    rows = []
    for case in cases:
        if isinstance(case, NetCase) and "fwd+bwd" not in modes:
            continue
        for dtype_name in dtypes:
            for mode in ["step"] if isinstance(case, NetCase) else modes:
                row = measure(case, dtype_name, mode, args, torch, impls, peaks[dtype_name], meta)
                rows.append(row)
                print(_line(_row_cells(row)))
                sys.stdout.flush()
    all_ok = not any(row["check"].startswith("MISMATCH") for row in rows)
    return rows, summarize(rows, {c.name for c in LAYER_CASES}), all_ok


def measure(case, dtype_name: str, mode: str, args, torch, impls, peak: float, meta: dict) -> dict:
    """One row of the table: check, time and measure every implementation on one case."""
    dtype = np.dtype(dtype_name)
    problems = []
    if isinstance(case, NetCase):
        # Check on one copy of the nets and time another, so that the timed (and
        # memory-measured) nets start fresh, holding no activations of the check.
        net = NetRunners(case, dtype, np.random.default_rng(0), torch, impls)
        problems += _compare({impl: tuple(_to_numpy(a) for a in fn()) for impl, fn in net.check_fns.items()},
                             TOL_NET[dtype_name])
        net = NetRunners(case, dtype, np.random.default_rng(0), torch, impls)
        meta.setdefault("networks", {})[case.name] = {"numcnn_model": net.source, "optimizer": net.optimizer}
        runners, flops, check = net.runners, net.flops, None
    else:
        arrays = _layer_inputs(case, dtype, np.random.default_rng(0))
        runners = {"numcnn": _numcnn_layer(case, arrays, mode)}
        if "torch" in impls and torch is not None:
            runners["torch"] = _torch_layer(torch, case, arrays, mode)
        if "textbook" in impls:
            runners["textbook"] = _textbook_layer(case, arrays, mode)
        flops = case.flops(mode)

        def check(results):
            problems.extend(_compare(results, TOL[dtype_name]))
    seconds, mem = time_interleaved(runners, args.warmup, args.repeat, check, not args.no_memory,
                                    min if args.stat == "min" else statistics.median)
    t_nc, t_torch, t_tb = (seconds.get(impl) for impl in IMPLS)
    gflops = flops / t_nc / 1e9 if flops else None
    return {
        "workload": case.name, "dtype": dtype_name, "mode": mode, "seconds": seconds,
        "gflops": gflops, "pct_peak": 100 * gflops / peak if gflops else None,
        "numcnn_over_torch": t_nc / t_torch if t_torch else None,
        "textbook_over_numcnn": t_tb / t_nc if t_tb else None,
        "peak_mib": mem,
        "check": ("MISMATCH " + ", ".join(problems)) if problems else ("ok" if len(runners) > 1 else "-"),
    }


def run_epoch(args, torch, impls) -> dict:
    """SimpleConvNet, batch 100, Adam, on Fashion-MNIST: seconds per epoch per implementation.

    Timed over --epoch-steps steps (after 2 warm-up steps each), the implementations taking
    turns in chunks of 10 steps, then scaled to the steps of a full epoch."""
    batch = 100 if not args.quick else 10
    try:
        from .data import load
        (x_train, y_train), _ = load("fashion-mnist", download=False)
        source = "Fashion-MNIST"
    except Exception as exc:
        size = 60000 if not args.quick else 100
        x_train = np.random.default_rng(0).random((size, 1, 28, 28), dtype=np.float32)
        y_train = np.random.default_rng(1).integers(0, 10, size)
        source = f"synthetic {size}x1x28x28 (Fashion-MNIST not available: {type(exc).__name__})"
    steps_per_epoch = len(x_train) // batch
    steps = min(args.epoch_steps if not args.quick else 3, steps_per_epoch)
    order = np.random.default_rng(0).permutation(len(x_train))

    def batches():  # the epoch's batches, wrapping round for the warm-up steps
        i = 0
        while True:
            idx = order[i * batch:(i + 1) * batch]
            yield x_train[idx], y_train[idx]
            i = (i + 1) % steps_per_epoch

    model, model_source = numcnn_net("simple_convnet", np.float32)
    layers = _leaves(model)
    step, optimizer = numcnn_optimizer(model)
    loss = SoftmaxCrossEntropy()

    def numcnn_step(x, y):
        loss.forward(model.forward(x), y)
        model.backward(loss.backward())
        step()
    trainers = {"numcnn": numcnn_step}

    net = torch_net(torch, layers, np.float32) if torch is not None and "torch" in impls else None
    if net is not None:
        opt = torch_optimizer(torch, net, optimizer)

        def torch_step(x, y):
            opt.zero_grad(set_to_none=True)
            torch.nn.functional.cross_entropy(net(torch.from_numpy(x)), torch.from_numpy(y)).backward()
            opt.step()
        trainers["torch"] = torch_step
    book = textbook_net(layers) if "textbook" in impls else None
    if book is not None:
        update = textbook_update(book, optimizer)

        def textbook_step(x, y):
            update(book.gradient(x, y))
        trainers["textbook"] = textbook_step

    streams = {impl: batches() for impl in trainers}
    for impl, train in trainers.items():
        for _ in range(2):
            train(*next(streams[impl]))
    elapsed = dict.fromkeys(trainers, 0.0)
    done = 0
    while done < steps:
        chunk = min(10, steps - done)
        for impl, train in trainers.items():
            start = time.perf_counter()
            for _ in range(chunk):
                train(*next(streams[impl]))
            elapsed[impl] += time.perf_counter() - start
        done += chunk
    per_epoch = {impl: seconds / steps * steps_per_epoch for impl, seconds in elapsed.items()}
    return {"data": source, "model": model_source, "optimizer": optimizer, "batch": batch, "steps_timed": steps,
            "steps_per_epoch": steps_per_epoch, "seconds_per_epoch": per_epoch}


def _memory_child(args) -> int:
    """One fresh process: build DeepConvNet in one implementation, train a few steps, report
    the peak RSS (ru_maxrss) and the RSS just before training."""
    threads = blas_threads()
    torch = _import_torch(threads) if args.memory_child == "torch" else None
    dtype = np.dtype(args.dtype if args.dtype != "both" else "float32")
    case = NetCase("DeepConvNet", "deep_convnet", args.memory_batch)
    impls = ("numcnn", args.memory_child)
    net = NetRunners(case, dtype, np.random.default_rng(0), torch, impls)
    run = net.runners.get(args.memory_child)
    if run is None:
        print(json.dumps({"error": f"{args.memory_child} is not available"}))
        return 1
    if args.memory_child != "numcnn":
        del net.runners["numcnn"]
        net.model = None
    gc.collect()
    _malloc_trim()
    baseline_kb = _status_kb("VmRSS")
    for _ in range(args.memory_steps):
        run()
    maxrss_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
    print(json.dumps({"baseline_kb": baseline_kb, "maxrss_kb": maxrss_kb}))
    return 0


def run_memory(args, impls) -> dict:
    batch = args.memory_batch if not args.quick else 8
    steps = args.memory_steps if not args.quick else 1
    results = {}
    for impl in impls:
        cmd = [sys.executable, "-m", "numcnn.bench", "--memory-child", impl, "--memory-batch", str(batch),
               "--memory-steps", str(steps), "--dtype", args.dtype if args.dtype != "both" else "float32"]
        proc = subprocess.run(cmd, capture_output=True, text=True)
        try:
            report = json.loads(proc.stdout.strip().splitlines()[-1])
        except (IndexError, json.JSONDecodeError):
            report = {"error": (proc.stderr.strip().splitlines() or ["no output"])[-1]}
        if "maxrss_kb" in report and report.get("baseline_kb") is not None:
            report["peak_increase_mib"] = (report["maxrss_kb"] - report["baseline_kb"]) / 1024
        results[impl] = report
    return {"batch": batch, "steps": steps, "results": results}


# -- entry point -------------------------------------------------------------------------------
def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="numcnn bench", description="Time numcnn's kernels and training "
                                "steps against PyTorch and the textbook code, and check they agree.")
    p.add_argument("--quick", action="store_true", help="tiny sizes, 1 repetition (a smoke test)")
    p.add_argument("--only", help="comma-separated workloads: " + ",".join(c.name for c in LAYER_CASES + NET_CASES))
    p.add_argument("--dtype", choices=("float32", "float64", "both"), default="both")
    p.add_argument("--mode", choices=("fwd", "fwdbwd", "both"), default="both")
    p.add_argument("--repeat", type=int, help="timed repetitions per case (default 7; 1 with --quick)")
    p.add_argument("--warmup", type=int, help="untimed repetitions first (default 2; 0 with --quick)")
    p.add_argument("--stat", choices=("median", "min"), default="median",
                   help="how repetitions combine; min resists a busy machine better")
    p.add_argument("--json", metavar="PATH", help="also write every result to this JSON file")
    p.add_argument("--no-torch", action="store_true", help="leave PyTorch out")
    p.add_argument("--no-textbook", action="store_true", help="leave the textbook implementation out")
    p.add_argument("--no-memory", action="store_true", help="leave the peak-memory column empty")
    p.add_argument("--epoch", action="store_true",
                   help="instead of the table: seconds per epoch of SimpleConvNet on Fashion-MNIST")
    p.add_argument("--epoch-steps", type=int, default=100, help="steps timed for --epoch, scaled to an epoch")
    p.add_argument("--memory", action="store_true",
                   help="instead of the table: peak memory of DeepConvNet training, each in a fresh process")
    p.add_argument("--memory-batch", type=int, default=256, help=argparse.SUPPRESS)
    p.add_argument("--memory-steps", type=int, default=3, help=argparse.SUPPRESS)
    p.add_argument("--memory-child", choices=IMPLS, help=argparse.SUPPRESS)
    return p


def main(argv=None) -> int:
    try:
        args = _parser().parse_args(argv)
    except SystemExit as exc:  # --help, or a usage error already printed
        return int(exc.code or 0)
    if args.memory_child:
        return _memory_child(args)
    if args.only is not None:
        args.only = {name.strip().lower() for name in args.only.split(",") if name.strip()}
        known = {c.name.lower() for c in LAYER_CASES + NET_CASES}
        if not args.only or args.only - known:
            print(f"numcnn bench: unknown workload(s) {sorted(args.only - known) or args.only}; "
                  f"known: {', '.join(c.name for c in LAYER_CASES + NET_CASES)}", file=sys.stderr)
            return 2
    args.repeat = args.repeat if args.repeat is not None else (1 if args.quick else 7)
    args.warmup = args.warmup if args.warmup is not None else (0 if args.quick else 2)
    if args.repeat < 1 or args.warmup < 0:
        print("numcnn bench: --repeat must be >= 1 and --warmup >= 0", file=sys.stderr)
        return 2

    threads = blas_threads()
    impls = [impl for impl, off in zip(IMPLS, (False, args.no_torch, args.no_textbook)) if not off]
    if args.memory:  # the children import torch, not this process
        torch = None
    else:
        torch = None if args.no_torch else _import_torch(threads)
        if torch is None and "torch" in impls:
            impls.remove("torch")
    previous_threads = torch.get_num_threads() if torch is not None else None
    try:
        return _run(args, torch, impls, threads)
    finally:
        if torch is not None:
            torch.set_num_threads(previous_threads)


def _run(args, torch, impls, threads) -> int:
    meta = {"numpy": np.__version__, "python": platform.python_version(), "machine": platform.machine(),
            "cpus": os.cpu_count(), "blas_threads": threads, "repeat": args.repeat, "warmup": args.warmup,
            "stat": args.stat, "quick": args.quick}
    if torch is not None:
        meta.update(torch=torch.__version__, torch_threads=torch.get_num_threads())
    print(f"numcnn bench: numpy {np.__version__} ({threads} BLAS threads)"
          + (f", torch {torch.__version__} (set to {torch.get_num_threads()} threads)" if torch is not None else "")
          + f", {os.cpu_count()} CPUs")
    report = {"meta": meta}
    status = 0

    if args.memory:
        mem = run_memory(args, impls)
        report["memory"] = mem
        print(f"peak memory, DeepConvNet training step, batch {mem['batch']}, {mem['steps']} steps, "
              f"each in a fresh process (ru_maxrss minus RSS after imports and model construction):")
        for impl, r in mem["results"].items():
            if "peak_increase_mib" in r:
                print(f"  {impl:<9} +{r['peak_increase_mib']:7.1f} MiB   (peak RSS {r['maxrss_kb'] / 1024:.0f} MiB)")
            else:
                print(f"  {impl:<9} failed: {r.get('error')}")
                status = 1
    elif args.epoch:
        ep = run_epoch(args, torch, impls)
        report["epoch"] = ep
        scaled = ep["steps_timed"] < ep["steps_per_epoch"]
        print(f"one epoch of SimpleConvNet ({ep['model']}), {ep['data']}, batch {ep['batch']}, {ep['optimizer']}:"
              + (f" timed {ep['steps_timed']} steps, scaled by {ep['steps_per_epoch'] / ep['steps_timed']:.0f}"
                 if scaled else " the full epoch"))
        base = ep["seconds_per_epoch"]["numcnn"]
        for impl, seconds in ep["seconds_per_epoch"].items():
            relative = f"   ({seconds / base:.2f}x numcnn)" if impl != "numcnn" else ""
            print(f"  {impl:<9} {seconds:8.1f} s/epoch{relative}")
    else:
        peak_n = 256 if args.quick else 2048
        stat = statistics.median if args.stat == "median" else min
        peaks = {dt: gemm_peak(np.dtype(dt), peak_n, 1, 1 if args.quick else 5, stat) for dt in ("float32", "float64")}
        meta["gemm_peak_gflops"] = peaks
        print(f"GEMM peak (np.matmul {peak_n}^3, {args.stat}): "
              + ", ".join(f"{dt} {v:.1f} GFLOP/s" for dt, v in peaks.items()))
        print(f"each time: the {args.stat} of {args.repeat} runs after {args.warmup} warm-up runs, "
              "the implementations taking turns")
        print("torch fwd runs under no_grad; fwd+bwd returns dx, dweight, dbias. textbook = the book's im2col "
              "code in the input's dtype (per group for groups > 1).")
        print("ratios are time ratios: nc/torch > 1 means numcnn is slower; tb/nc > 1 means numcnn is faster.")
        print()
        rows, summary, ok = run_table(args, torch, impls, peaks, meta)
        report["rows"], report["summary"] = rows, dict(summary)
        print()
        for _, text in summary:
            print(text)
        for name, info in meta.get("networks", {}).items():
            print(f"{name}: {info['numcnn_model']}, optimizer {info['optimizer']} (torch and textbook use the same)")
        if not ok:
            print("WARNING: some outputs did not match numcnn's (see the check column)")
            status = 1
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(report, fh, indent=1, default=float)
        print(f"wrote {args.json}")
    return status


if __name__ == "__main__":
    sys.exit(main())
