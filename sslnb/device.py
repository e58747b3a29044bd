"""Device and precision choice: `auto` means CUDA when present, bf16 where the GPU has it, fp16
with a gradient scaler on older GPUs (T4, P100), fp32 on the CPU (faster than bf16 on the small
CPUs this project is tested on)."""
from __future__ import annotations

import torch

from .errors import ParamsError

DTYPES = {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}


def resolve_device(spec: str = "auto") -> torch.device:
    """The device of `spec`; a CUDA device comes with TF32 on (`use_tensor_cores`)."""
    if spec == "auto":
        spec = "cuda" if torch.cuda.is_available() else "cpu"
    if spec.startswith("cuda") and not torch.cuda.is_available():
        raise ParamsError(f"key 'device' is '{spec}', but no CUDA GPU is visible to torch. "
                          f"Use device: auto (or cpu), or run on a machine with a GPU.")
    try:
        device = torch.device(spec)
    except RuntimeError:
        raise ParamsError(f"key 'device' is '{spec}'; accepted: auto | cpu | cuda | cuda:N.") from None
    if device.type == "cuda":
        use_tensor_cores()
    return device


def use_tensor_cores() -> None:
    """fp32 matmuls on CUDA in TF32 (10-bit mantissa, fp32 range): feature extraction, probes,
    kNN and every fp32 run use the tensor cores (about 495 against 67 TFLOP/s on an H100/H200).
    Training under bf16 autocast is unaffected; the losses' fp32 matmuls follow it too."""
    torch.set_float32_matmul_precision("high")


def matmul_precision(device: torch.device) -> str:
    """How fp32 matmuls run on `device`: part of a feature cache's key."""
    if device.type == "cuda":
        return {"highest": "fp32", "high": "tf32", "medium": "bf16"}[
            torch.get_float32_matmul_precision()]
    return "fp32"


def resolve_precision(spec: str, device: torch.device,
                      bf16_supported: bool | None = None) -> tuple[torch.dtype | None, bool]:
    """(autocast dtype or None for fp32, whether a GradScaler is needed)."""
    if spec == "auto":
        if device.type != "cuda":
            return None, False
        if bf16_supported is None:
            bf16_supported = torch.cuda.is_bf16_supported(including_emulation=False)
        spec = "bf16" if bf16_supported else "fp16"
    dtype = DTYPES[spec]
    return dtype, dtype is torch.float16 and device.type == "cuda"


def peak_memory_mb(device: torch.device) -> float:
    """Peak memory of this process: CUDA allocator peak on GPUs, max resident set size on CPUs."""
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    import resource
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    import platform
    return f"CPU ({platform.processor() or platform.machine()}, {torch.get_num_threads()} threads)"
