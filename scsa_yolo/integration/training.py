"""What our commands rely on in Ultralytics' trainer, its arguments and its run folders.

Touch points (supported: ultralytics >=8.4,<8.5), each covered by
``tests/test_integration_training.py``:

1. **Training arguments** -- a ``key=value`` from our command line is converted the way
   the ``yolo`` command converts it (``ultralytics.cfg.smart_value``), renamed when the key
   is deprecated and refused when unknown (``check_dict_alignment``), and type-checked
   (``check_cfg``), so a mistake is reported before any training starts.
2. **A finished checkpoint** -- the trainer's final save strips the optimizer and sets the
   checkpoint's ``epoch`` to -1 (``ultralytics.utils.torch_utils.strip_optimizer``); any
   other ``last.pt`` can be resumed.
3. **results.csv** -- ``BaseTrainer.save_metrics`` writes a header line, then one row per
   finished epoch.
4. **CPU threads** -- ``select_device`` (training and validation alike) sets
   ``torch.set_num_threads`` to one core less than the machine has (at most 8), keeping a
   core for the data loaders; :func:`use_all_cpu_cores` gives them back.
5. **Log level** -- :func:`quiet` silences ``ultralytics.utils.LOGGER`` below a level.
6. **The epoch's loss** -- ``trainer.tloss`` holds the running mean of the epoch's loss
   terms (a tensor, or a dict of them); :func:`epoch_loss` sums it.
7. **Memory format** -- ``BaseTrainer._setup_train`` moves the model to channels-last memory
   on a CUDA device when ``channels_last`` is True, or None (the default) outside Windows
   (:func:`trains_channels_last`); the EMA, and so validation during training, copies it.
   The final validation's AutoBackend (``yolo val`` and ``predict`` too) keeps a CUDA model
   contiguous unless ``channels_last`` is True, and makes a CPU model channels-last on an
   x86 machine with oneDNN unless it is False (:func:`autobackend_channels_last`). (Covered
   by ``tests/test_scsa_warmup.py`` and ``tests/test_compile_ahead.py``, where the warm-up
   follows them.)
"""

from __future__ import annotations

import contextlib
import logging
import sys
from pathlib import Path
from typing import Any, Iterator

from scsa_yolo.errors import ScsaYoloError


class TrainArgumentError(ScsaYoloError, ValueError):
    """A training argument Ultralytics does not accept; ``key`` names it."""

    usage = True

    def __init__(self, key: str, message: str) -> None:
        super().__init__(message)
        self.key = key


def argument_value(text: str) -> Any:
    """``"0.01"`` -> 0.01, ``"False"`` -> False, ``"none"`` -> None, ``"AdamW"`` -> ``"AdamW"``:
    a command-line value as the ``yolo`` command reads it."""
    from ultralytics.cfg import smart_value

    return smart_value(text.strip())


@contextlib.contextmanager
def quiet(level: int = logging.ERROR) -> Iterator[None]:
    """Ultralytics logs only from ``level`` up inside this block (no model summaries, help texts)."""
    from ultralytics.utils import LOGGER

    before = LOGGER.level
    LOGGER.setLevel(max(before, level))
    try:
        yield
    finally:
        LOGGER.setLevel(before)


def check_train_args(args: dict[str, Any]) -> dict[str, Any]:
    """``args`` as Ultralytics' trainer will take them: deprecated keys renamed, values checked.

    Raises:
        TrainArgumentError: an unknown key (Ultralytics' message suggests similar ones), or
            a value of the wrong type or out of range.
    """
    from ultralytics.cfg import DEFAULT_CFG_DICT, check_cfg, check_dict_alignment

    checked = dict(args)
    try:
        with quiet(logging.WARNING):  # it logs the whole `yolo` help text before raising; deprecations still warn
            check_dict_alignment(DEFAULT_CFG_DICT, checked)  # renames deprecated keys in place
    except SyntaxError as error:
        unknown = next((key for key in args if key not in DEFAULT_CFG_DICT), "")
        raise TrainArgumentError(unknown, str(error).strip()) from None
    for key, value in checked.items():
        try:
            check_cfg({key: value})
        except (TypeError, ValueError) as error:
            raise TrainArgumentError(key, str(error).strip()) from None
    return checked


def is_finished_checkpoint(checkpoint: dict) -> bool:
    """True for the checkpoint of a completed training (there is nothing left to resume)."""
    return checkpoint.get("epoch", 0) == -1


def checkpoint_state(last: Path) -> str:
    """``finished``, ``partial`` (resumable) or ``corrupt`` for a run's ``last.pt``.

    A kill while Ultralytics writes ``last.pt`` can leave a truncated file; it is reported
    on stderr and called ``corrupt``, so that the run starts again instead of failing forever.
    """
    from scsa_yolo.integration.checkpoints import CheckpointError, load_checkpoint

    try:
        checkpoint = load_checkpoint(last, need_model=False)
    except CheckpointError as error:  # truncated zip, empty file, unpickling error...
        print(f"{error}; starting this run again", file=sys.stderr)
        return "corrupt"
    return "finished" if isinstance(checkpoint, dict) and is_finished_checkpoint(checkpoint) else "partial"


def finished_epochs(results_csv: Path) -> int:
    """Epochs a run folder's ``results.csv`` records (0 while there is none)."""
    try:
        return max(0, len(Path(results_csv).read_text().strip().splitlines()) - 1)
    except OSError:
        return 0


def use_all_cpu_cores(trainer=None) -> None:
    """Torch computes on every core this process may use again.

    As an ``on_train_start`` callback (``trainer`` given) it acts on CPU training only; called
    bare, after a validation, it always does. Measured on 2 cores, YOLOv8n at 160 px trains
    40% faster with both threads than with the one Ultralytics leaves, the loaders keeping up.
    """
    import torch

    from scsa_yolo.device import cpu_threads

    if trainer is None or trainer.device.type == "cpu":
        torch.set_num_threads(cpu_threads())


def epoch_loss(trainer) -> float | None:
    """The sum of the loss terms' running means over the current epoch; None before the
    first batch or when the trainer keeps no loss."""
    loss = getattr(trainer, "tloss", None)
    values = list(loss.values()) if isinstance(loss, dict) else [loss] if loss is not None else []
    try:
        return sum(float(v.sum()) if hasattr(v, "sum") else float(v) for v in values) if values else None
    except (TypeError, ValueError):
        return None


__all__ = [
    "TrainArgumentError",
    "argument_value",
    "check_train_args",
    "checkpoint_state",
    "epoch_loss",
    "finished_epochs",
    "is_finished_checkpoint",
    "quiet",
    "autobackend_channels_last",
    "trains_channels_last",
    "use_all_cpu_cores",
]


def trains_channels_last(device, channels_last: bool | None = None) -> bool:
    """Whether Ultralytics' trainer runs the model in channels-last memory on ``device`` (a
    ``torch.device`` or its name) given its ``channels_last`` argument (touch point 7).

    The fused SCSA kernels are compiled per memory layout of their input, so a warm-up must
    run the layout the job will run."""
    import torch
    from ultralytics.utils import WINDOWS
    from ultralytics.utils.torch_utils import TORCH_1_11

    wanted = channels_last is True or (channels_last is None and TORCH_1_11 and not WINDOWS)
    return bool(wanted) and torch.device(device).type == "cuda"


def autobackend_channels_last(device, channels_last: bool | None = None) -> bool:
    """Whether Ultralytics' AutoBackend (the final validation of a training job, ``yolo val``,
    ``yolo predict``) runs a PyTorch model in channels-last memory on ``device`` given the
    ``channels_last`` argument (touch point 7): where supported (CUDA, or an x86 CPU with
    oneDNN), when asked, or by default on such a CPU under Linux or Windows."""
    import platform

    import torch
    from ultralytics.utils import LINUX, WINDOWS
    from ultralytics.utils.torch_utils import TORCH_1_13

    kind = torch.device(device).type
    supported = kind == "cuda" or (TORCH_1_13 and kind == "cpu" and platform.machine() in {"AMD64", "x86_64"}
                                   and torch.backends.mkldnn.is_available() and torch.backends.mkldnn.enabled)
    wanted = channels_last if channels_last is not None else (kind == "cpu" and (LINUX or WINDOWS))
    return bool(wanted and supported)
