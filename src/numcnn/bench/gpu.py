"""What a worker needs to time an implementation on a GPU: its arrays moved there, the queue
waited for inside every timed call, and the device memory it reserved at its peak.

A GPU call returns as soon as its kernels are queued, so a host timer alone would time the
queueing. ``time_calls`` calls ``sync`` before it stops the clock: CuPy's
``Device.synchronize`` for numcnn, ``torch.cuda.synchronize`` for PyTorch.

Peak memory is what each library's caching allocator holds after the calls, starting from an
empty cache: CuPy's memory pool ``total_bytes`` (its pool keeps every block it ever needed at
once) and PyTorch's ``max_memory_reserved``. Both count reserved, not live, bytes, so they
compare like with like.
"""

from __future__ import annotations

import numpy as np

from ..backend import cuda_module, to_device, to_numpy


class NumcnnGPU:
    """numcnn on CuPy arrays."""

    def __init__(self, device: str = "cuda"):
        self.cupy = cuda_module(device)
        self.device = device

    def to(self, array: np.ndarray):
        return to_device(array, self.device)

    def host(self, array) -> np.ndarray:
        return to_numpy(array)

    def sync(self) -> None:
        self.cupy.cuda.Device().synchronize()

    def reset_peak(self) -> None:
        self.sync()
        self.cupy.get_default_memory_pool().free_all_blocks()

    def peak_mib(self) -> float:
        return self.cupy.get_default_memory_pool().total_bytes() / 2**20

    def describe(self) -> dict:
        runtime = self.cupy.cuda.runtime
        props = runtime.getDeviceProperties(self.cupy.cuda.Device().id)
        name = props["name"].decode() if isinstance(props["name"], bytes) else str(props["name"])
        return {"gpu": name, "driver": runtime.driverGetVersion(), "cuda_runtime": runtime.runtimeGetVersion(),
                "cupy": self.cupy.__version__}


class TorchGPU:
    """PyTorch on CUDA, with cuDNN as it comes (TF32 off, so float32 means float32)."""

    def __init__(self, torch, device: str = "cuda"):
        if not torch.cuda.is_available():
            raise RuntimeError("this PyTorch sees no CUDA device")
        self.torch, self.device = torch, torch.device(device)
        torch.backends.cudnn.benchmark = True
        torch.backends.cudnn.allow_tf32 = False
        torch.backends.cuda.matmul.allow_tf32 = False

    def to(self, array: np.ndarray):
        return self.torch.from_numpy(np.ascontiguousarray(array)).to(self.device)

    def host(self, tensor) -> np.ndarray:
        return tensor.detach().cpu().numpy()

    def sync(self) -> None:
        self.torch.cuda.synchronize()

    def reset_peak(self) -> None:
        self.sync()
        self.torch.cuda.empty_cache()
        self.torch.cuda.reset_peak_memory_stats()

    def peak_mib(self) -> float:
        return self.torch.cuda.max_memory_reserved() / 2**20

    def describe(self) -> dict:
        return {"gpu": self.torch.cuda.get_device_name(), "torch_cuda": self.torch.version.cuda,
                "cudnn": self.torch.backends.cudnn.version()}
