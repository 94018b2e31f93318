"""Running out of memory mid-run, as one line: which model, doing what, under which settings,
and what to change. The memory estimate (memory.check_fits) refuses a GPU run that cannot fit
before it starts; what it does not count (another process on the GPU, fragmentation, a CPU run's
RAM) still ends in torch.cuda.OutOfMemoryError or the CPU allocator's RuntimeError. The pipeline
catches those around each step that loads or trains a model (`step`) and raises a W2SError,
which ends the run `failed` with that line; the steps finished before it stay cached.
"""
from __future__ import annotations

import contextlib
import gc
from collections.abc import Iterator
from typing import Any

from .errors import W2SError

# what PyTorch's allocators and the OS say when an allocation fails
TEXTS = ("out of memory", "not enough memory", "DefaultCPUAllocator", "Cannot allocate memory")


def is_out_of_memory(e: BaseException) -> bool:
    """torch.cuda.OutOfMemoryError (torch.OutOfMemoryError), Python's MemoryError, or a
    RuntimeError from an allocator (the CPU's `DefaultCPUAllocator: not enough memory`)."""
    if isinstance(e, MemoryError) or type(e).__name__ == "OutOfMemoryError":
        return True
    return isinstance(e, RuntimeError) and any(t in str(e) for t in TEXTS)


def train_advice(train: Any, where: str, device: str) -> str:
    """The settings that lower a training step's memory, for `train` (a TrainConfig) whose
    keys are named under `where` (train, or weak_train for the weak supervisor's own)."""
    tries = []
    batch, micro = train.batch_size, train.micro_batch_size or train.batch_size
    smaller = [m for m in range(micro // 2, 0, -1) if batch % m == 0]
    if smaller:
        tries.append(f"{where}.micro_batch_size={smaller[0]}")
    if train.mode in ("full", "lora", "label_tokens") and not train.gradient_checkpointing:
        tries.append(f"{where}.gradient_checkpointing=true")
    if train.mode == "full":
        tries.append(f"{where}.mode=lora")
    if train.mode == "label_tokens" and train.adapter == "none":
        tries.append(f"{where}.adapter=lora")
    if train.mode == "last_k" and train.last_k > 1:
        tries.append(f"{where}.last_k={train.last_k // 2}")
    if device.startswith("cuda") and train.precision == "fp32":
        tries.append(f"{where}.precision=bf16")
    tries.append("a lower features.max_length or a smaller model")
    return ", ".join(tries)


def train_settings(train: Any, where: str) -> str:
    micro = train.micro_batch_size
    return (f"{where}.mode={train.mode}, {where}.batch_size={train.batch_size}"
            + (f", {where}.micro_batch_size={micro}" if micro and micro != train.batch_size else "")
            + (f", {where}.gradient_checkpointing=true" if train.gradient_checkpointing else ""))


def _release(device: str) -> None:
    """Give back what the failed step held, so that what runs next (a sweep's next cell) starts
    with the device's memory free."""
    gc.collect()
    if device.startswith("cuda"):
        import torch

        torch.cuda.empty_cache()


@contextlib.contextmanager
def step(doing: str, settings: str, advice: str, device: str) -> Iterator[None]:
    """Out of memory inside the block -> one W2SError line: `out of GPU memory <doing> (<settings>)
    on <device>: try <advice>; ...`. Every other exception passes through."""
    try:
        yield
    except W2SError:
        raise
    except Exception as e:
        if not is_out_of_memory(e):
            raise
        first = (str(e).strip().splitlines() or [type(e).__name__])[0][:160]
        gpu = device.startswith("cuda") or "CUDA" in first or type(e).__name__ == "OutOfMemoryError"
        what = "GPU" if gpu else "CPU"
        del e
        _release(device)
        raise W2SError(f"out of {what} memory {doing} ({settings}) on {device}: try {advice} "
                       f"(one at a time); the steps finished before it stay cached and are re-used "
                       f"[{first}]") from None


def anywhere(e: BaseException) -> str:
    """The line for running out of memory outside the steps `step` names (a method's own model,
    evaluation): what to lower, in general."""
    first = (str(e).strip().splitlines() or [type(e).__name__])[0][:160]
    return (f"out of memory ({first}); lower train.batch_size or set train.micro_batch_size, "
            "train.gradient_checkpointing=true or train.mode=lora, or a lower features.batch_size; "
            "the steps finished before it stay cached and are re-used")
