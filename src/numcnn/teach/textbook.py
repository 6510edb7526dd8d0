"""The bridge between the textbook's layer contract and numcnn's.

The textbook's layers keep their arrays as attributes: ``W``, ``b`` and, after ``backward``,
``dW`` and ``db``. numcnn's keep them in ``params`` and ``grads`` dicts. ``TextbookLayer``
shows a textbook layer to numcnn (``nc.gradcheck``, ``nc.Sequential``), and
``textbook_params`` hands a numcnn model's trained weights out under the textbook's names and
layouts.
"""

from __future__ import annotations

import numpy as np

from ..backend import to_numpy
from ..errors import ConfigError
from ..layers import Conv2d, Layer, Linear


class TextbookLayer(Layer):
    """A layer with the textbook's contract (``forward(x)``, ``backward(dout)``, and arrays
    ``W``, ``b``, ``dW``, ``db`` where it has parameters) as a numcnn Layer.

    ``params`` holds the very arrays ``W`` and ``b`` (not copies), so that ``nc.gradcheck``,
    which nudges them in place, nudges what the textbook layer computes with.
    """

    def __init__(self, layer):
        super().__init__()
        self.layer = layer
        for name in ("W", "b"):
            if getattr(layer, name, None) is not None:
                self.params[name] = getattr(layer, name)

    def forward(self, x: np.ndarray) -> np.ndarray:
        return self.layer.forward(x)

    def backward(self, dout: np.ndarray) -> np.ndarray:
        dx = self.layer.backward(dout)
        for name in self.params:
            self.grads[name] = getattr(self.layer, "d" + name)
        return dx


def textbook_params(model) -> dict[str, np.ndarray]:
    """A model's weights as the textbook's networks name and lay them out.

    Parameters
    ----------
    model : Sequential
        Of Conv2d, Linear and parameter-free layers (e.g. SimpleConvNet).

    Returns
    -------
    dict of str to ndarray
        {"W1": ..., "b1": ..., "W2": ...}, numbered in layer order, as float64 copies: a
        convolution's W is (FN, C, FH, FW), as in numcnn; an affine layer's W is (in, out),
        the transpose of numcnn's Linear weight (out, in), so that the textbook's
        ``x @ W + b`` applies.
    """
    params = {}
    for _, layer in model.named_layers():
        if isinstance(layer, (Conv2d, Linear)):
            weight = to_numpy(layer.params["weight"]).astype(np.float64)
            n = len(params) // 2 + 1
            params[f"W{n}"] = weight if isinstance(layer, Conv2d) else np.ascontiguousarray(weight.T)
            bias = layer.params.get("bias")
            params[f"b{n}"] = (to_numpy(bias).astype(np.float64) if bias is not None
                               else np.zeros(weight.shape[0]))
        elif layer.params:
            raise ConfigError(f"textbook_params: {type(layer).__name__} has parameters the textbook's "
                              "networks do not name")
    return params
