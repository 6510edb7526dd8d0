"""Exchange models with other frameworks through ONNX (the optional ``numcnn[onnx]`` extra).

::

    import numcnn as nc
    nc.interop.export_onnx(model, "net.onnx", input_shape=(1, 28, 28))
    model = nc.interop.import_onnx("net.onnx")
    model, training = nc.interop.read_onnx("net.onnx")  # with the training record export kept

``onnx`` is imported inside these functions, on first use, so ``import numcnn`` needs NumPy
only; calling them without the extra raises ImportError with the pip command. PyTorch weights
need no converter: ``Sequential.load_state_dict`` takes ``{k: v.numpy() for k, v in
torch_model.state_dict().items()}`` for a model of the same structure.
"""

from .onnx_export import export_onnx, to_onnx_model
from .onnx_import import import_onnx, read_onnx

__all__ = ["export_onnx", "import_onnx", "read_onnx", "to_onnx_model"]
