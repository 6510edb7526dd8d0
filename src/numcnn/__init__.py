"""numcnn: convolutional neural networks in NumPy, exact against PyTorch.

::

    import numcnn as nc
    model = nc.zoo.simple_convnet()
    opt = nc.optim.Adam(model, lr=1e-3)
    nc.Trainer(model, nc.SoftmaxCrossEntropy(), opt).fit(x, y, epochs=3, batch_size=100)
"""

from . import functional, init, runtime
from .errors import (ConfigError, DataError, DeviceError, DivergenceError, DTypeError, GradcheckError,
                     ModelFileError, NumcnnError, ResumeMismatchError, ShapeError)
from .gradcheck import gradcheck
from .init import manual_seed
from .layers import (AdaptiveAvgPool2d, AdaptiveMaxPool2d, AvgPool2d, BatchNorm1d, BatchNorm2d, Conv2d,
                     ConvTranspose2d, Dropout, Flatten, GlobalAvgPool2d, GlobalMaxPool2d, Layer, LeakyReLU, Linear,
                     MaxPool2d, MaxUnpool2d, MSELoss, Normalize, ReLU, Sigmoid, Softmax, SoftmaxCrossEntropy, Tanh,
                     register_layer)
from .model import Residual, Sequential, load, save, summary

__all__ = [
    "functional", "init", "runtime",
    "NumcnnError", "ConfigError", "DataError", "DeviceError", "DivergenceError", "DTypeError", "GradcheckError",
    "ModelFileError", "ResumeMismatchError", "ShapeError",
    "gradcheck", "manual_seed",
    "Layer", "register_layer", "Conv2d", "ConvTranspose2d", "MaxPool2d", "MaxUnpool2d", "AvgPool2d",
    "GlobalAvgPool2d",
    "GlobalMaxPool2d", "AdaptiveAvgPool2d", "AdaptiveMaxPool2d", "Linear", "Flatten",
    "ReLU", "LeakyReLU", "Sigmoid", "Tanh", "Softmax", "Dropout", "BatchNorm1d", "BatchNorm2d", "Normalize",
    "SoftmaxCrossEntropy", "MSELoss",
    "Sequential", "Residual", "load", "save", "summary",
]
__version__ = "0.2.0"  # the one place the version is written (pyproject.toml reads it)


def __getattr__(name):
    # Heavier parts load on first use, so `import numcnn` stays NumPy-only and fast.
    import importlib
    if name in ("optim", "data", "zoo", "interop", "viz", "recipe", "backend", "train", "distributed",
                "pretrained", "inference", "rundir", "checkpoint", "teach"):
        module = importlib.import_module(f".{name}", __name__)
        globals()[name] = module
        return module
    if name == "datasets":
        return __getattr__("data")
    if name in ("threads", "allocator"):  # their earlier names: numcnn.runtime holds both policies
        return runtime
    if name == "Trainer":
        from .train import Trainer
        return Trainer
    raise AttributeError(f"module 'numcnn' has no attribute {name!r}")
