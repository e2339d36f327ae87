"""Counting CUDA devices without initialising CUDA in this process.

``torch.cuda.is_available()`` calls ``cudaGetDeviceCount`` (it runs ``cuInit``) and so "poisons fork": a forked
child can no longer use CUDA. vLLM forks its engine-core process unless ``torch.cuda.is_initialized()`` is true or
``VLLM_WORKER_MULTIPROC_METHOD=spawn``, so an ``is_available()`` probe before the engine makes the engine fail with
"Cannot re-initialize CUDA in forked subprocess". This probe uses NVML (``pynvml`` when installed, else
``torch.cuda.device_count()``, which in torch 2.13 asks NVML first and documents that it does not poison fork when
NVML discovery succeeds), and honours ``CUDA_VISIBLE_DEVICES``.
"""

from __future__ import annotations

import importlib.util
import os


def parent_visible_devices() -> list[str] | None:
    """The entries of this process's ``CUDA_VISIBLE_DEVICES`` (None when unset: every GPU is visible).

    CUDA stops at the first empty entry, so does this.
    """
    raw = os.environ.get("CUDA_VISIBLE_DEVICES")
    if raw is None:
        return None
    out: list[str] = []
    for entry in raw.split(","):
        entry = entry.strip()
        if not entry or entry == "-1":
            break
        out.append(entry)
    return out


def cuda_device_count() -> int:
    """Visible CUDA devices, never initialising CUDA here (0 when there is no driver or no torch)."""
    count = _nvml_count()
    if count is None:
        if importlib.util.find_spec("torch") is None:
            return 0
        import torch

        try:
            return int(torch.cuda.device_count())
        except (RuntimeError, AssertionError):
            return 0
    visible = parent_visible_devices()
    return count if visible is None else min(count, len(visible))


def _nvml_count() -> int | None:
    if importlib.util.find_spec("pynvml") is None:
        return None
    import pynvml

    try:
        pynvml.nvmlInit()
    except Exception:  # no driver: NVML raises its own NVMLError subclasses
        return None
    try:
        return int(pynvml.nvmlDeviceGetCount())
    finally:
        pynvml.nvmlShutdown()


def map_group(group: tuple[int, ...], visible: list[str] | None) -> str:
    """A GPU group's indices (as this process numbers its GPUs) -> the child's ``CUDA_VISIBLE_DEVICES``.

    Under a restricted parent (SLURM sets ``CUDA_VISIBLE_DEVICES=4,5``) group ``[0]`` is the parent's first
    visible GPU (physical 4), not physical GPU 0.
    """
    if visible is None:
        return ",".join(str(g) for g in group)
    for g in group:
        if g >= len(visible):
            from cure_bench.errors import ConfigError

            raise ConfigError(
                f"--gpu-groups names GPU {g}, but CUDA_VISIBLE_DEVICES={os.environ.get('CUDA_VISIBLE_DEVICES')} "
                f"leaves {len(visible)} visible"
            )
    return ",".join(visible[g] for g in group)
