"""The one PyTorch parity helper every layer and kernel test goes through, and the
hypothesis strategies that draw the configurations PyTorch accepts.

    ours = nc.Conv2d(3, 4, 3, padding=1, dtype=dtype)
    check_against_torch(ours, torch.nn.Conv2d(3, 4, 3, padding=1), (2, 3, 8, 8), dtype, seed=0)

runs one forward and one backward in both libraries on the same random input, parameters,
buffers and upstream gradient, and compares the output, dx, every parameter gradient and every
buffer after the step, plus the dtypes (output and dx keep the input dtype).
"""

from __future__ import annotations

from typing import Any, Callable

import numpy as np
import pytest
import torch
from hypothesis import strategies as st

from numcnn.backend import cuda_module, device_of, is_array, to_device, to_numpy
from numcnn.errors import DeviceError
from reference import pair


def _cuda_missing() -> str | None:
    try:
        cuda_module()
    except DeviceError as exc:
        return str(exc)
    return None


CUDA_MISSING = _cuda_missing()
# PyTorch on CUDA would otherwise round its convolutions' and matmuls' inputs to TF32.
torch.backends.cudnn.allow_tf32 = False
torch.backends.cuda.matmul.allow_tf32 = False
needs_cuda = pytest.mark.skipif(CUDA_MISSING is not None, reason=f"needs CuPy and an NVIDIA GPU: {CUDA_MISSING}")
DEVICES = ("cpu", pytest.param("cuda", marks=[pytest.mark.cuda, needs_cuda]))

# Each entry: |ours - torch| <= TOL * (|torch| + FLOOR * scale), scale the largest entry (or, for
# a gradient, the largest entry of the gradient it came from, if larger). Relative to the entry's
# own size, so an error in a small entry is not hidden by a large one elsewhere; the floor admits
# the rounding of sums that cancel down to nearly nothing, which neither library can avoid.
TOL = {np.dtype(np.float64): 1e-9, np.dtype(np.float32): 1e-4}
FLOOR = 0.1
TORCH_DTYPE = {np.dtype(np.float64): torch.float64, np.dtype(np.float32): torch.float32}
DTYPES = (np.float64, np.float32)


def assert_close(name: str, ours, ref, dtype, upstream: float = 0.0) -> None:
    """Shapes equal, no NaN or inf, and every entry |ours - ref| <= TOL * (|ref| + FLOOR * scale),
    scale = max(max|ref|, upstream); upstream: the largest entry of the gradient backpropagated."""
    dtype = np.dtype(dtype)
    ours = np.asarray(to_numpy(ours), dtype=np.float64)
    ref = ref.detach().cpu().numpy() if isinstance(ref, torch.Tensor) else np.asarray(ref)
    ref = np.asarray(ref, dtype=np.float64)
    assert ours.shape == ref.shape, f"{name}: shape {ours.shape}, reference {ref.shape}"
    if ours.size == 0:
        return
    assert np.all(np.isfinite(ref)), f"{name}: the reference itself is not finite"
    assert np.all(np.isfinite(ours)), f"{name}: not finite at {np.argwhere(~np.isfinite(ours))[:3].tolist()}"
    err = np.abs(ours - ref)
    floor = max(FLOOR * max(float(np.max(np.abs(ref))), upstream), float(np.finfo(dtype).tiny))
    allowed = TOL[dtype] * (np.abs(ref) + floor)
    worst = np.unravel_index(np.argmax(err / allowed), err.shape)
    assert err[worst] <= allowed[worst], (
        f"{name}: |ours - reference| = {err[worst]:.3g} > {allowed[worst]:.3g} allowed "
        f"at index {tuple(int(i) for i in worst)}: ours {ours[worst]!r}, reference {ref[worst]!r}")


class Kernel:
    """Drive a functional forward/backward pair like a layer, so check_against_torch can test it.

    forward(x, [target], **params) -> (out, cache)
    backward([dout], cache)        -> (dx, {param name: grad})
    """

    def __init__(self, forward: Callable, backward: Callable, **params: np.ndarray) -> None:
        self._forward, self._backward = forward, backward
        self.params = params
        self.grads: dict[str, np.ndarray] = {}
        self.buffers: dict[str, np.ndarray] = {}
        self.training = True

    def to(self, device: str) -> "Kernel":
        self.params = {key: to_device(value, device) for key, value in self.params.items()}
        return self

    def forward(self, x, *target):
        out, self._cache = self._forward(x, *target, **self.params)
        return out

    def backward(self, *dout):
        dx, self.grads = self._backward(*dout, self._cache)
        return dx


def _torch_counterparts(named: dict[str, torch.Tensor], keys, what: str) -> dict[str, torch.Tensor]:
    """Our key -> torch tensor with that name, or the only one whose dotted name ends in it."""
    found = {}
    for key in keys:
        matches = [t for name, t in named.items() if name == key or name.endswith("." + key)]
        assert len(matches) == 1, f"no unique torch {what} for {key!r} among {sorted(named)}"
        found[key] = matches[0]
    assert len(found) == len(named), f"torch has {what}s {sorted(named)}, ours {sorted(keys)}"
    return found


def _randomize(ours, rng: np.random.Generator) -> None:
    """Give params and buffers random values in place, so that no default (zero bias, unit
    running variance) can hide a bug."""
    for value in getattr(ours, "params", {}).values():
        value[...] = rng.standard_normal(value.shape)
    for key, value in getattr(ours, "buffers", {}).items():
        if np.issubdtype(value.dtype, np.integer):
            value[...] = rng.integers(0, 5, value.shape)
        elif "var" in key:
            value[...] = rng.uniform(0.5, 2.0, value.shape)
        else:
            value[...] = rng.standard_normal(value.shape)


def check_against_torch(ours: Any, theirs: torch.nn.Module | Callable, x, dtype, *, seed: int = 0,
                        target=None, randomize: bool = True, device: str = "cpu") -> None:
    """Run ours and theirs on the same data; assert outputs, gradients and buffers agree.

    ours     : a numcnn layer (forward(x), backward(dout), params, grads, buffers, training),
               a loss (forward(x, target) -> float, backward() -> dx), or a Kernel
    theirs   : a torch.nn.Module (our params and buffers are copied into it, matched by name;
               it is cast to the torch dtype and put in ours' train/eval mode), or a callable
               theirs(tx, [ttarget], **torch_params) built from ours.params
    x        : an input shape (filled with standard normals) or an array (cast to dtype)
    target   : for losses, integer labels or a float target (cast to dtype)
    randomize: overwrite ours' params and buffers with random values first
    device   : where numcnn computes ("cpu" or "cuda"); torch follows on CUDA when it has it
    """
    dtype = np.dtype(dtype)
    tdtype = TORCH_DTYPE[dtype]
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(x).astype(dtype) if isinstance(x, tuple) else np.array(x, dtype=dtype)
    x_before = x.copy()
    if randomize:
        _randomize(ours, rng)
    tdevice = "cuda" if device != "cpu" and torch.cuda.is_available() else "cpu"
    if device != "cpu":
        ours.to(device)
    params = {k: to_numpy(v) for k, v in getattr(ours, "params", {}).items()}
    buffers = {k: to_numpy(v) for k, v in getattr(ours, "buffers", {}).items()}
    same_dtype_params = {k for k, v in params.items() if v.dtype == dtype}

    if isinstance(theirs, torch.nn.Module):
        theirs.to(tdtype).to(tdevice)
        theirs.train(getattr(ours, "training", True))
        theirs.zero_grad(set_to_none=True)
        tparams = _torch_counterparts(dict(theirs.named_parameters()), params, "parameter")
        tbuffers = _torch_counterparts(dict(theirs.named_buffers()), buffers, "buffer")
        with torch.no_grad():
            for key, tensor in {**tparams, **tbuffers}.items():
                source = params[key] if key in params else buffers[key]
                assert tuple(tensor.shape) == source.shape, f"{key}: torch {tuple(tensor.shape)}, ours {source.shape}"
                tensor.copy_(torch.from_numpy(np.array(source)).to(tdevice))
        run = theirs
    else:
        tparams = {k: torch.tensor(np.array(v), dtype=tdtype, device=tdevice, requires_grad=True)
                   for k, v in params.items()}
        tbuffers = {}
        run = lambda *args: theirs(*args, **tparams)  # noqa: E731

    tx = torch.tensor(x_before, device=tdevice, requires_grad=True)
    x = to_device(x, device)
    if target is None:
        out = ours.forward(x)
        tout = run(tx)
        assert is_array(out) and device_of(out).startswith(device) and out.dtype == dtype, \
            f"output {type(out).__name__} of dtype {getattr(out, 'dtype', None)}, input dtype {dtype} on {device}"
        assert_close("output", out, tout, dtype)
        dout = rng.standard_normal(out.shape).astype(dtype)
        dout_before = dout.copy()
        dout = to_device(dout, device)
        dx = ours.backward(dout)
        tout.backward(torch.from_numpy(dout_before).to(tdevice))
        assert np.array_equal(to_numpy(dout), dout_before), "backward modified its dout argument"
    else:
        target = np.asarray(target)
        if np.issubdtype(target.dtype, np.floating):
            target = target.astype(dtype)
        ttarget = torch.from_numpy(target.copy()).to(tdevice)
        loss = ours.forward(x, to_device(target, device))
        tloss = run(tx, ttarget)
        assert np.isfinite(float(loss)), f"loss is {loss}"
        assert_close("loss", loss, tloss, dtype)
        dx = ours.backward()
        tloss.backward()
    assert np.array_equal(to_numpy(x), x_before), "the layer modified its input"
    assert is_array(dx) and device_of(dx).startswith(device) and dx.dtype == dtype, \
        f"dx {type(dx).__name__} of dtype {getattr(dx, 'dtype', None)}, input dtype {dtype} on {device}"
    upstream = float(np.max(np.abs(dout_before))) if target is None and dout_before.size else 1.0
    assert_close("dx", dx, tx.grad, dtype, upstream)

    grads = {k: to_numpy(v) for k, v in getattr(ours, "grads", {}).items()}
    buffers = {k: to_numpy(v) for k, v in getattr(ours, "buffers", {}).items()}
    for key, tensor in tparams.items():
        assert key in grads and grads[key] is not None, f"backward left no gradient for {key!r}"
        if key in same_dtype_params:
            assert grads[key].dtype == dtype, f"grad {key}: dtype {grads[key].dtype}, param dtype {dtype}"
        assert_close(f"grad {key}", grads[key], tensor.grad, dtype)
    for key, tensor in tbuffers.items():
        if np.issubdtype(buffers[key].dtype, np.integer):
            assert int(buffers[key]) == int(tensor), f"buffer {key}: ours {buffers[key]}, torch {int(tensor)}"
        else:
            assert_close(f"buffer {key}", buffers[key], tensor, dtype)


# -- configurations PyTorch accepts -------------------------------------------------------------

dtypes = st.sampled_from(DTYPES)
seeds = st.integers(0, 2**32 - 1)


def int_or_pair(lo: int, hi: int):
    """An int in [lo, hi] or an (h, w) pair of them."""
    return st.one_of(st.integers(lo, hi), st.tuples(st.integers(lo, hi), st.integers(lo, hi)))


def _min_size(kernel: int, pad_total: int, dilation: int = 1) -> int:
    """The smallest input size (at least 1) on which one window fits."""
    return max(1, dilation * (kernel - 1) + 1 - pad_total)


@st.composite
def conv_configs(draw, max_kernel: int = 4, max_extra: int = 5) -> dict:
    """Conv2d arguments plus "x_shape": groups dividing both channel counts, padding "same"
    only with stride 1, and an input big enough for one dilated window."""
    groups = draw(st.integers(1, 3))
    in_channels = groups * draw(st.integers(1, 3))
    out_channels = groups * draw(st.integers(1, 3))
    kernel_size = draw(int_or_pair(1, max_kernel))
    dilation = draw(int_or_pair(1, 3))
    padding = draw(st.one_of(int_or_pair(0, 3), st.sampled_from(["valid", "same"])))
    stride = 1 if padding == "same" else draw(int_or_pair(1, 3))
    (kh, kw), (dh, dw) = pair(kernel_size), pair(dilation)
    if padding == "same":  # padded by d*(k-1) in all, any size fits
        min_h = min_w = 1
    else:
        ph, pw = (0, 0) if padding == "valid" else pair(padding)
        min_h, min_w = _min_size(kh, 2 * ph, dh), _min_size(kw, 2 * pw, dw)
    h = draw(st.integers(min_h, min_h + max_extra))
    w = draw(st.integers(min_w, min_w + max_extra))
    return dict(x_shape=(draw(st.integers(1, 3)), in_channels, h, w), in_channels=in_channels,
                out_channels=out_channels, kernel_size=kernel_size, stride=stride, padding=padding,
                dilation=dilation, groups=groups, bias=draw(st.booleans()))


@st.composite
def window_configs(draw, max_kernel: int = 4, max_extra: int = 5) -> dict:
    """im2col arguments plus "x_shape": symmetric int/pair padding, any stride and dilation."""
    kernel_size = draw(int_or_pair(1, max_kernel))
    stride, padding, dilation = draw(int_or_pair(1, 3)), draw(int_or_pair(0, 2)), draw(int_or_pair(1, 2))
    (kh, kw), (ph, pw), (dh, dw) = pair(kernel_size), pair(padding), pair(dilation)
    h = draw(st.integers(_min_size(kh, 2 * ph, dh), _min_size(kh, 2 * ph, dh) + max_extra))
    w = draw(st.integers(_min_size(kw, 2 * pw, dw), _min_size(kw, 2 * pw, dw) + max_extra))
    return dict(x_shape=(draw(st.integers(1, 2)), draw(st.integers(1, 3)), h, w),
                kernel_size=kernel_size, stride=stride, padding=padding, dilation=dilation)


@st.composite
def pool_configs(draw, max_kernel: int = 4, max_extra: int = 5, avg: bool = False) -> dict:
    """Pooling arguments plus "x_shape": padding at most half the kernel (PyTorch's rule),
    stride None (= kernel) or any, overlapping windows included."""
    kernel_size = draw(int_or_pair(1, max_kernel))
    kh, kw = pair(kernel_size)
    padding = draw(st.one_of(st.integers(0, min(kh, kw) // 2),
                             st.tuples(st.integers(0, kh // 2), st.integers(0, kw // 2))))
    ph, pw = pair(padding)
    stride = draw(st.one_of(st.none(), int_or_pair(1, 4)))
    h = draw(st.integers(_min_size(kh, 2 * ph), _min_size(kh, 2 * ph) + max_extra))
    w = draw(st.integers(_min_size(kw, 2 * pw), _min_size(kw, 2 * pw) + max_extra))
    config = dict(x_shape=(draw(st.integers(1, 3)), draw(st.integers(1, 3)), h, w),
                  kernel_size=kernel_size, stride=stride, padding=padding)
    if avg:
        config["count_include_pad"] = draw(st.booleans())
    return config


def layer_args(config: dict) -> dict:
    """The config without its "x_shape", to pass as constructor keyword arguments."""
    return {k: v for k, v in config.items() if k != "x_shape"}


def tied_values(rng: np.random.Generator, shape, dtype) -> np.ndarray:
    """Small integers: many equal maxima in every pooling window, to test the tie rule."""
    return rng.integers(-2, 3, shape).astype(dtype)
