"""Which device a run uses and how records name it (torch only, no ultralytics)."""

from __future__ import annotations

import torch

from scsa_yolo.errors import ScsaYoloError

__all__ = ["DeviceRequestError", "check_device_request", "cpu_name", "cpu_threads", "device_name", "resolve_device"]

_FORMS = "cpu, a GPU id (0), several (0,1) or cuda:0"


class DeviceRequestError(ScsaYoloError, ValueError):
    """A device request this machine cannot serve; the message says which devices exist."""

    usage = True


def _gpus_here() -> str:
    count = torch.cuda.device_count()
    if count == 0:
        return "this machine has no GPU that torch can use (torch.cuda.is_available() is False)"
    names = ", ".join(f"{i} ({torch.cuda.get_device_name(i)})" for i in range(count))
    return f"this machine has {count} GPU(s): {names}"


def check_device_request(text: str, ids_only: bool = False) -> str:
    """Refuse a device request (``cpu``, ``0``, ``0,1``, ``cuda:0``, ``mps``, ``-1`` for an
    idle GPU) that names a device this machine does not have; returns ``text`` unchanged.

    GPU ids are torch's indices (those ``CUDA_VISIBLE_DEVICES`` leaves), as Ultralytics
    reads them; an id listed in ``CUDA_VISIBLE_DEVICES`` is accepted too (Ultralytics
    translates it). ``ids_only``: only ``cpu`` or plain GPU ids (``--devices`` of bench,
    whose workers each see one GPU through ``CUDA_VISIBLE_DEVICES``).

    Raises:
        DeviceRequestError: an unreadable request or a device that does not exist here.
    """
    import os

    request = str(text).strip().lower().replace(" ", "")
    if request in ("cpu", ""):
        return text
    if request in ("mps", "mps:0") and not ids_only:
        if not torch.backends.mps.is_available():
            raise DeviceRequestError(f"{text}: Apple's MPS is not available here; use cpu")
        return text
    entries = request.split(",")
    if "cpu" in entries:
        raise DeviceRequestError(f"{text}: cpu cannot be combined with GPU ids; give cpu alone or GPU ids only")
    if not ids_only:
        entries = ["0" if e == "cuda" else e.removeprefix("cuda:") for e in entries]
    if not all(e.isdigit() or (e == "-1" and not ids_only) for e in entries):
        forms = "cpu or GPU ids (0 or 0,1)" if ids_only else _FORMS
        raise DeviceRequestError(f"{text!r} is not a device; use {forms}")
    count = torch.cuda.device_count()
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    translated = set() if ids_only or not visible else {v.strip() for v in visible.split(",")}
    missing = [e for e in entries if (e == "-1" and count == 0) or (e != "-1" and int(e) >= count and e not in translated)]
    if missing:
        note = f" (CUDA_VISIBLE_DEVICES={visible})" if visible is not None else ""
        ids = [e for e in missing if e != "-1"]
        what = ("no idle GPU can be chosen" if not ids else
                f"GPU {ids[0]} does not exist here" if len(ids) == 1 else f"GPUs {', '.join(ids)} do not exist here")
        use = "one of those ids or cpu" if count else "cpu"
        raise DeviceRequestError(f"{text}: {what}; {_gpus_here()}{note}. Use {use}")
    return text


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
