"""Device and precision choices of training and sampling (``device``, ``precision`` in params.yaml).

``device: auto`` runs on CUDA when torch sees a GPU, else on the CPU. ``precision`` is ``auto`` (the default),
``fp32``, ``bf16`` (autocast) or ``fp16`` (autocast plus a ``GradScaler`` for training, CUDA only). ``auto`` takes bf16
where the hardware computes it natively (CUDA GPUs with bf16, CPUs with AMX-BF16 or AVX512-BF16) and fp32 elsewhere:
on a CPU without bf16 instructions autocast emulates it and a training step is slower than in fp32
(``benchmarks/precision.py`` measures both on the machine it runs on). Every refusal happens in
:func:`check_precision`, before any compute starts.
"""
from __future__ import annotations

import contextlib
import functools
import math

import torch

PRECISIONS = ("fp32", "bf16", "fp16")
NATIVE_BF16_CPU_FLAGS = ("amx_bf16", "avx512_bf16")  # /proc/cpuinfo names of the instructions oneDNN uses for bf16


class DeviceError(ValueError):
    """A device or precision this machine cannot run; the message names the parameter."""


def set_threads(threads: int | None) -> None:
    """torch's intra-op threads for this process (a verb's --threads; None: torch's default)."""
    if threads:
        torch.set_num_threads(threads)


def resolve_device(name: str) -> torch.device:
    """``auto`` picks CUDA when present, else the CPU; an explicit ``cuda`` without a GPU is an error."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError as err:
        raise DeviceError(f"device: {name!r} is not a torch device (auto, cpu, cuda, cuda:1, ...)") from err
    if device.type == "cuda" and not torch.cuda.is_available():
        raise DeviceError(f"device: {name!r} asked for, but torch sees no CUDA GPU here (use device: auto or cpu)")
    return device


def cpuinfo_field(name: str, cpuinfo: str = "/proc/cpuinfo") -> str | None:
    """The first ``name : value`` of Linux's CPU description; None where the file or the field does not exist."""
    try:
        with open(cpuinfo) as fh:
            return next((line.split(":", 1)[1].strip() for line in fh if line.split(":", 1)[0].strip() == name), None)
    except OSError:
        return None


@functools.cache
def cpu_flags(cpuinfo: str = "/proc/cpuinfo") -> frozenset[str]:
    """The CPU's feature flags as Linux lists them; empty where the file does not exist (other systems)."""
    return frozenset((cpuinfo_field("flags", cpuinfo) or "").split())


def native_bf16(device: torch.device, flags: frozenset[str] | None = None) -> bool:
    """Whether ``device`` computes bf16 in hardware: a CUDA GPU that supports it, or a CPU with AMX-BF16 or
    AVX512-BF16 (``flags``: the CPU's flags, read from /proc/cpuinfo when not given)."""
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported()
    if device.type == "cpu":
        return bool(set(NATIVE_BF16_CPU_FLAGS) & (cpu_flags() if flags is None else flags))
    return False


def resolve_precision(device: torch.device, precision: str) -> str:
    """The precision a job runs in: ``auto`` becomes bf16 where :func:`native_bf16` holds, else fp32; the others
    are checked (:func:`check_precision`) and returned as they are."""
    if precision == "auto":
        return "bf16" if native_bf16(device) else "fp32"
    check_precision(device, precision)
    return precision


def check_precision(device: torch.device, precision: str) -> None:
    if precision not in PRECISIONS and precision != "auto":
        raise DeviceError(f"precision must be auto or one of {', '.join(PRECISIONS)}, not {precision!r}")
    if precision == "fp16" and device.type != "cuda":
        raise DeviceError(f"precision: fp16 needs a CUDA GPU (it runs on {device}); use bf16 or fp32 there")


def autocast(device: torch.device, precision: str):
    """The autocast context of ``precision`` (``auto`` resolved; a no-op for fp32)."""
    precision = resolve_precision(device, precision)
    dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(precision)
    return torch.autocast(device.type, dtype=dtype, enabled=dtype is not None)


def attention_kernel(device: torch.device):
    """The scaled-dot-product-attention kernel of a training step: the math kernel on the CPU, PyTorch's own choice
    elsewhere. Both compute the same attention; on the CPU the flash kernel's bf16 backward took ~11 % of a 32 px
    UNet training step in a profile, and the math kernel makes a step 0.91-0.95x as long
    (benchmarks/train_step.py)."""
    if device.type != "cpu":
        return contextlib.nullcontext()
    from torch.nn.attention import SDPBackend, sdpa_kernel

    return sdpa_kernel([SDPBackend.MATH])


def grad_scaler(device: torch.device, precision: str) -> torch.amp.GradScaler:
    """Loss scaling against fp16 gradient underflow; disabled (every call a pass-through) for fp32 and bf16."""
    precision = resolve_precision(device, precision)
    return torch.amp.GradScaler(device.type, enabled=precision == "fp16")


def scaled_step(loss: torch.Tensor, optimizer: torch.optim.Optimizer, scaler: torch.amp.GradScaler, parameters,
                grad_clip: float) -> torch.Tensor:
    """One optimiser step through ``scaler`` (:func:`grad_scaler`): backward of the scaled loss, the gradients
    unscaled and then clipped to norm ``grad_clip`` (0: not clipped), the step, the scale update. For fp32 and bf16
    the scaler calls are pass-throughs. Returns the gradient norm before clipping."""
    parameters = list(parameters)
    optimizer.zero_grad(set_to_none=True)
    scaler.scale(loss).backward()
    scaler.unscale_(optimizer)  # clip the true gradients
    grad_norm = torch.nn.utils.clip_grad_norm_(parameters, grad_clip if grad_clip > 0 else math.inf)
    scaler.step(optimizer)
    scaler.update()
    return grad_norm


def in_float32(fn):
    """Run ``fn`` with autocast off and its floating-point tensor arguments in float32: loss terms whose values are
    small differences of nearly equal numbers (softmaxes of cosine similarities, high-pass residuals) lose their
    sign to bf16 rounding (tests/test_losses.py)."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        device = next(a.device.type for a in args if isinstance(a, torch.Tensor))
        with torch.autocast(device_type=device, enabled=False):
            args = [a.float() if isinstance(a, torch.Tensor) and a.is_floating_point() else a for a in args]
            return fn(*args, **kwargs)

    return wrapper

