"""The Layer protocol every numcnn layer follows.

A layer is the textbook's object with an explicit ``forward`` and ``backward``:

* ``params``  : dict name -> ndarray, the trainable arrays (PyTorch names: ``weight``, ``bias``)
* ``grads``   : dict with the same keys, filled by ``backward``
* ``buffers`` : dict name -> ndarray, state that is saved but not trained (``running_mean``, ...)
* ``training``: True after ``train()``, False after ``eval()``

``forward(x)`` keeps whatever ``backward`` needs; ``backward(dout)`` returns ``dx`` and fills ``grads``.
Containers (``Sequential``, ``Residual``) hold child layers and expose them through ``children()``,
which is all that state dicts, optimizers and summaries need to walk a model.
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Any, Callable, Iterator

import numpy as np

from ..backend import check_device, device_of, get_array_module, to_device
from ..errors import NumcnnError, ShapeError
from ..functional import check_float_array


# Layer classes by name, so that an architecture saved as JSON can be rebuilt.
LAYER_REGISTRY: dict[str, type["Layer"]] = {}


def register_layer(cls: type["Layer"]) -> type["Layer"]:
    """Class decorator: make ``cls`` loadable from a saved architecture by its class name.

    Parameters
    ----------
    cls : type
        A Layer subclass whose constructor arguments are its ``config()``.

    Returns
    -------
    type
        cls itself, now in ``LAYER_REGISTRY``.
    """
    LAYER_REGISTRY[cls.__name__] = cls
    return cls


class Layer:
    """Base class: subclasses set ``params``/``buffers`` in ``__init__`` and define forward/backward.

    Attributes
    ----------
    params : dict of str to ndarray
        The trainable arrays, by PyTorch's names (``weight``, ``bias``).
    grads : dict of str to ndarray
        Their gradients, with the same keys and shapes, filled by ``backward``.
    buffers : dict of str to ndarray
        State that is saved but not trained (``running_mean``, ...).
    training : bool
        True after ``train()``, False after ``eval()``.
    rng : numpy.random.Generator or None
        The generator of a layer that draws random numbers (``seed``), else None.
    """

    def __init__(self) -> None:
        self.params: dict[str, np.ndarray] = {}
        self.grads: dict[str, np.ndarray] = {}
        self.buffers: dict[str, np.ndarray] = {}
        self.training = True
        self.rng: np.random.Generator | None = None  # set by layers that draw random numbers

    # -- the two methods a layer defines -------------------------------------------------------
    def forward(self, x: np.ndarray) -> np.ndarray:
        """The layer's output; keeps what ``backward`` needs.

        Parameters
        ----------
        x : ndarray, shape (N, ...)
            A batch: (N, C, H, W) for convolutions and pools, (N, features) for Linear. Float32
            or float64; the output has x's dtype.

        Returns
        -------
        ndarray, shape (N, ...)
            The output batch, such as (N, F, OH, OW) for a convolution.
        """
        raise NotImplementedError

    def backward(self, dout: np.ndarray) -> np.ndarray:
        """The input gradient, from the output gradient; fills ``grads``.

        Call it after ``forward``, which kept what it needs: the textbook's chain rule, one layer
        at a time, from the loss back to the input.

        Parameters
        ----------
        dout : ndarray, shape (N, ...)
            The gradient of the loss with respect to the last forward's output, of that output's
            shape, such as (N, F, OH, OW).

        Returns
        -------
        dx : ndarray, shape (N, ...)
            The gradient with respect to the last forward's input, of x's shape, such as
            (N, C, H, W). ``grads[key]`` then holds the gradient of ``params[key]``.
        """
        raise NotImplementedError

    def backward_params(self, dout: np.ndarray) -> None:
        """The parameters' gradients only, for a layer whose input needs none.

        The first trainable layer of a model in training needs no input gradient, as PyTorch
        skips an input that does not require grad. Layers where the input gradient is a separate
        product (Conv2d, Linear) skip it.

        Parameters
        ----------
        dout : ndarray, shape (N, ...)
            As ``backward`` takes it; ``grads`` is set as ``backward`` sets it.
        """
        self.backward(dout)

    def fuses(self, layer: "Layer") -> bool:
        """Whether ``forward_fused(x, layer)`` can apply ``layer`` within this layer's own passes.

        Sequential fuses where it can (``backward`` then goes back through both): a pass over the
        output saved each way. No layer fuses by default.

        Parameters
        ----------
        layer : Layer
            The next layer in a Sequential.
        """
        return False

    def forward_fused(self, x: np.ndarray, layer: "Layer") -> np.ndarray:
        """layer.forward(self.forward(x)), computed as one layer (see ``fuses``).

        Parameters
        ----------
        x : ndarray, shape (N, ...)
            As ``forward`` takes it.
        layer : Layer
            The next layer, one for which ``fuses`` said True.

        Returns
        -------
        ndarray, shape (N, ...)
            The output of both.
        """
        raise NotImplementedError(f"{type(self).__name__} fuses no layer after it")

    def has_params(self) -> bool:
        """Whether this layer or any layer inside it has a trainable array."""
        return any(True for _ in self.named_parameters())

    def __call__(self, x: np.ndarray) -> np.ndarray:
        return self.forward(x)

    # -- modes ---------------------------------------------------------------------------------
    def train(self, mode: bool = True) -> "Layer":
        """Set training mode (or eval mode) on every layer in the tree.

        Parameters
        ----------
        mode : bool, default True
            True for training (dropout drops, batch norm uses the batch's statistics), False for eval.

        Returns
        -------
        Layer
            self.
        """
        self.training = bool(mode)
        for _, child in self.children():
            child.train(mode)
        return self

    def eval(self) -> "Layer":
        return self.train(False)

    @contextmanager
    def evaluating(self) -> Iterator["Layer"]:
        """Eval mode inside a ``with`` block; afterwards every layer has its own mode back.

        ::

            with model.evaluating():
                logits = model.forward(x)
        """
        modes = [(layer, layer.training) for _, layer in self.named_layers()]
        self.eval()
        try:
            yield self
        finally:
            for layer, mode in modes:
                layer.training = mode

    # -- structure -----------------------------------------------------------------------------
    def children(self) -> list[tuple[str, "Layer"]]:
        """Named child layers, in order; empty for a leaf layer."""
        return []

    def config(self) -> dict[str, Any]:
        """Constructor arguments (JSON-friendly) that rebuild this layer without its weights."""
        return {}

    def named_layers(self, prefix: str = "") -> Iterator[tuple[str, "Layer"]]:
        """Every layer in the tree, depth first, with its dotted PyTorch-style name.

        Parameters
        ----------
        prefix : str, default ""
            Prepended to every name (this layer's own name is prefix itself).

        Yields
        ------
        tuple
            (dotted name, layer).
        """
        yield prefix, self
        for name, child in self.children():
            yield from child.named_layers(f"{prefix}.{name}" if prefix else name)

    def named_parameters(self) -> Iterator[tuple[str, "Layer", str]]:
        """``(dotted_name, owner_layer, key)`` for every trainable array.

        The owner and key, not the array, are given so that an optimizer always reads the
        current ``owner.params[key]`` and ``owner.grads[key]``.
        """
        for prefix, layer in self.named_layers():
            for key in layer.params:
                yield (f"{prefix}.{key}" if prefix else key), layer, key

    def gradients(self) -> Iterator[tuple[str, np.ndarray]]:
        """``(dotted_name, gradient)`` of every trainable array, in ``named_parameters`` order.

        The one place to reach every gradient, in an order fixed by the model's structure
        (the same in every process), e.g. to all-reduce them between ``backward`` and the
        optimizer's ``step``. A layer's ``backward`` may *replace* its ``grads`` arrays, so
        ask again after every backward; changing the arrays in place (``grad[...] = ...``,
        ``np.copyto``) is then exactly what the optimizer reads.
        """
        for name, layer, key in self.named_parameters():
            yield name, layer.grads[key]

    def zero_grad(self) -> None:
        for _, layer in self.named_layers():
            for key, value in layer.params.items():
                layer.grads[key] = get_array_module(value).zeros_like(value)

    # -- device --------------------------------------------------------------------------------
    def to(self, device: str) -> "Layer":
        """Move every param, gradient and buffer of the tree to device.

        The arrays are replaced by copies on that device (plain ``numpy.ndarray`` or
        ``cupy.ndarray``); forward and backward then run there, as each kernel computes with the
        module of its input. Optimizer state moves with ``Optimizer.to``.

        Parameters
        ----------
        device : str
            "cpu", "cuda" or "cuda:N".

        Returns
        -------
        Layer
            self.

        Raises
        ------
        DeviceError
            For an unknown device, or "cuda" without CuPy or a GPU.
        """
        device = check_device(device)
        for _, layer in self.named_layers():
            for store in (layer.params, layer.grads, layer.buffers):
                for key, value in store.items():
                    store[key] = to_device(value, device)
        return self

    @property
    def device(self) -> str:
        """Where the tree's arrays live, ``"cpu"`` or ``"cuda:N"`` (``"cpu"`` for a layer without arrays)."""
        for _, layer in self.named_layers():
            for value in (*layer.params.values(), *layer.buffers.values()):
                return device_of(value)
        return "cpu"

    def num_params(self) -> int:
        return sum(layer.params[key].size for _, layer, key in self.named_parameters())

    # -- random state (dropout masks) ----------------------------------------------------------
    def seed(self, seed: int | None, generator: Callable[[Any], Any] = np.random.default_rng) -> None:
        """Give every random layer in the tree its own generator, derived from one seed.

        Parameters
        ----------
        seed : int or None
            The one seed; None draws fresh entropy.
        generator : callable, optional
            Builds a generator from a ``SeedSequence``; NumPy's default_rng if not given. It
            stays on the host whatever the device: a random layer asks it for one key per
            forward (``integers``) and makes its numbers from that key where its arrays live;
            ``rng_states`` saves the generators' ``bit_generator.state``.
        """
        layers = [layer for _, layer in self.named_layers() if layer.rng is not None]
        for layer, child in zip(layers, np.random.SeedSequence(seed).spawn(len(layers))):
            layer.rng = generator(child)

    def rng_states(self) -> dict[str, Any]:
        """JSON-friendly states of every random layer's generator, by dotted name."""
        return {name: layer.rng.bit_generator.state
                for name, layer in self.named_layers() if layer.rng is not None}

    def set_rng_states(self, states: dict[str, Any]) -> None:
        """Restore the generators' states that ``rng_states`` gave.

        Parameters
        ----------
        states : dict of str to dict
            By dotted layer name; a random layer without an entry keeps its state.
        """
        for name, layer in self.named_layers():
            if layer.rng is not None and name in states:
                layer.rng.bit_generator.state = states[name]

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.config().items())
        return f"{type(self).__name__}({args})"


@contextmanager
def errors_named(layer_name: str):
    """Re-raise a kernel's error under the layer's name ("conv2d: ..." -> "Conv2d: ...")."""
    try:
        yield
    except NumcnnError as exc:
        detail = str(exc).split(": ", 1)[-1]
        raise type(exc)(f"{layer_name}: {detail}") from None


def check_input(x: Any, layer: str, ndim: int | tuple[int, ...] | None = None,
                channels: int | None = None) -> np.ndarray:
    """A float array of the given rank whose axis 1 has ``channels`` entries, or a typed error."""
    x = check_float_array(x, layer, ndim)
    if channels is not None and (x.ndim < 2 or x.shape[1] != channels):
        got = x.shape[1] if x.ndim >= 2 else "none"
        raise ShapeError(f"{layer}: expected {channels} channels on axis 1, got {got} (input shape {x.shape})")
    return x


def check_dout(dout: Any, layer: str, shape: tuple[int, ...]) -> np.ndarray:
    """The gradient given to ``layer.backward``: a float array of its forward output's shape."""
    return check_float_array(dout, layer, what="dout", shape=shape)


def jsonable(value):
    """An int, a string, or a list for a pair: what json.dumps and the constructors both take."""
    return list(value) if isinstance(value, (tuple, list)) else value


def backward_before_forward(layer: str) -> NumcnnError:
    return NumcnnError(f"{layer}: backward() called before forward()")
