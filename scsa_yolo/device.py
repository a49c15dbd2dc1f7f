"""Which device a run uses and how records name it (torch only, no ultralytics)."""

from __future__ import annotations

import torch

__all__ = ["cpu_name", "cpu_threads", "device_name", "resolve_device"]


def resolve_device(device: str | int | torch.device | None) -> torch.device:
    """``None`` -> first GPU if any else CPU; ``"0"`` -> ``cuda:0``; ``"cpu"`` -> CPU."""
    if device is None or device == "":
        return torch.device("cuda:0" if torch.cuda.is_available() else "cpu")
    if isinstance(device, torch.device):
        return device
    text = str(device).strip().lower()
    if text.isdigit():
        return torch.device(f"cuda:{text}")
    return torch.device(text)


def device_name(device: torch.device) -> str:
    """Human name of a device: the GPU model, or the CPU model and thread count."""
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return f"{cpu_name()} ({torch.get_num_threads()} threads)"


def cpu_name() -> str:
    import platform

    try:
        with open("/proc/cpuinfo") as handle:
            for line in handle:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "cpu"


def cpu_threads() -> int:
    """Cores this process may use."""
    import os

    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1
