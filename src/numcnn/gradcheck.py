"""Numerical gradient check: compare a layer's backward with central differences.

Works on anything with ``forward`` and ``backward`` (your own layers included):

::

    layer = MyLayer(..., dtype=np.float64)
    numcnn.gradcheck(layer, x)                       # x: float64 input
    numcnn.gradcheck(nc.SoftmaxCrossEntropy(), logits, target=labels)

For a layer it checks d<forward(x), dout>/dx and /dparam for a random dout; for a loss
(``target`` given) it checks d loss/d prediction. Use float64: float32 differences are too
coarse to tell a bug from rounding.
"""

from __future__ import annotations

from typing import Any, Callable

import numpy as np

from .errors import GradcheckError


def _rng_snapshot(layer) -> Callable[[], None]:
    """A function that puts every random generator in ``layer`` back where it is now,
    so that repeated forwards draw the same dropout masks."""
    if hasattr(layer, "rng_states"):
        states = layer.rng_states()
        return lambda: layer.set_rng_states(states)
    rng = getattr(layer, "rng", None)
    if isinstance(rng, np.random.Generator):
        state = rng.bit_generator.state
        return lambda: setattr(rng.bit_generator, "state", state)
    return lambda: None


def _all_params(layer) -> list[tuple[str, dict, dict, str]]:
    """(name, params_dict, grads_dict, key) for a Layer tree or a bare object with params/grads."""
    if hasattr(layer, "named_parameters"):
        return [(name, owner.params, owner.grads, key) for name, owner, key in layer.named_parameters()]
    params = getattr(layer, "params", {}) or {}
    return [(key, params, layer.grads, key) for key in params]


def _compare(name: str, analytic: np.ndarray, numeric: np.ndarray, atol: float, rtol: float) -> None:
    analytic = np.asarray(analytic, dtype=np.float64)
    if analytic.shape != numeric.shape:
        raise GradcheckError(f"gradient of {name}: shape {analytic.shape}, expected {numeric.shape}")
    err = np.abs(analytic - numeric) - (atol + rtol * np.abs(numeric))
    if np.any(err > 0) or not np.all(np.isfinite(analytic)):
        where = np.unravel_index(np.nanargmax(np.where(np.isfinite(err), err, np.inf)), err.shape)
        raise GradcheckError(
            f"gradient of {name} disagrees at index {tuple(int(i) for i in where)}: analytic "
            f"{analytic[where]:.10g}, numerical {numeric[where]:.10g} "
            f"(max abs error {np.nanmax(np.abs(analytic - numeric)):.3g}, atol={atol}, rtol={rtol})")


def gradcheck(layer: Any, x: np.ndarray, *, target: Any = None, eps: float = 1e-6,
              atol: float = 1e-6, rtol: float = 1e-5, seed: int = 0, check_params: bool = True) -> bool:
    """Check ``layer.backward`` against central differences (f(v+eps) - f(v-eps)) / 2eps.

    Buffers (e.g. batch-norm running statistics) are restored afterwards.

    Parameters
    ----------
    layer : Layer or object
        An object with forward(x) and backward(dout) (a Layer), or, when ``target`` is given,
        a loss with forward(pred, target) -> float and backward() -> dpred.
    x : ndarray
        The input, of any shape the layer accepts, such as (N, C, H, W); not modified.
    target : array_like, optional
        The loss's target; None checks a layer.
    eps : float, default 1e-6
        The step of the central differences.
    atol, rtol : float
        The absolute and relative tolerances of the comparison.
    seed : int, default 0
        Seeds the random output gradient a layer is checked with.
    check_params : bool, default True
        Check the parameters' gradients too, not only the input's.

    Returns
    -------
    bool
        True.

    Raises
    ------
    GradcheckError
        Naming the array, index and both values of the worst disagreement.
    """
    x = np.array(x, copy=True)
    rng = np.random.default_rng(seed)
    restore_rng = _rng_snapshot(layer)
    saved_buffers = [(owner.buffers, {k: v.copy() for k, v in owner.buffers.items()})
                     for _, owner in layer.named_layers()] if hasattr(layer, "named_layers") else []

    if target is None:
        restore_rng()
        out = layer.forward(x)
        dout = rng.standard_normal(np.shape(out)).astype(np.asarray(out).dtype)
        dx = layer.backward(dout)

        def objective() -> float:
            restore_rng()
            return float(np.sum(np.asarray(layer.forward(x), dtype=np.float64) * dout))
    else:
        layer.forward(x, target)
        dx = layer.backward()

        def objective() -> float:
            return float(layer.forward(x, target))

    params = _all_params(layer) if check_params else []
    analytic = [("input", dx, x)] + [(name, grads[key].copy(), params_d[key])
                                     for name, params_d, grads, key in params]
    try:
        for name, grad, array in analytic:
            numeric = np.zeros(array.shape, dtype=np.float64)
            flat = array.reshape(-1)  # a view: perturbing it perturbs the array the layer reads
            for i in range(flat.size):
                original = flat[i]
                flat[i] = original + eps
                f_plus = objective()
                flat[i] = original - eps
                f_minus = objective()
                flat[i] = original
                numeric.reshape(-1)[i] = (f_plus - f_minus) / (2 * eps)
            _compare(name, grad, numeric, atol, rtol)
    finally:
        for buffers, saved in saved_buffers:
            for key, value in saved.items():
                buffers[key][...] = value
    return True
