"""Layer objects: each owns its params/grads and calls the stateless kernels in numcnn.functional."""

from .activation import LeakyReLU, ReLU, Sigmoid, Softmax, Tanh
from .base import LAYER_REGISTRY, Layer, register_layer
from .conv import Conv2d, ConvTranspose2d
from .dropout import Dropout
from .linear import Flatten, Linear
from .loss import MSELoss, SoftmaxCrossEntropy
from .norm import BatchNorm, BatchNorm1d, BatchNorm2d
from .normalize import Normalize
from .pool import (AdaptiveAvgPool2d, AdaptiveMaxPool2d, AvgPool2d, GlobalAvgPool2d, GlobalMaxPool2d, MaxPool2d,
                   MaxUnpool2d)

__all__ = ["Layer", "register_layer", "LAYER_REGISTRY", "Conv2d", "ConvTranspose2d", "MaxPool2d", "MaxUnpool2d",
           "AvgPool2d",
           "GlobalAvgPool2d", "GlobalMaxPool2d", "AdaptiveAvgPool2d", "AdaptiveMaxPool2d", "Linear", "Flatten",
           "ReLU", "LeakyReLU", "Sigmoid", "Tanh", "Softmax",
           "Dropout", "BatchNorm", "BatchNorm1d", "BatchNorm2d", "Normalize", "SoftmaxCrossEntropy", "MSELoss"]
