"""Compiling a training job's fused SCSA kernels ahead (scsa_yolo.integration.job_kernels).

The prediction is checked on a real stock training in Triton's CPU interpreter: every kernel
variant the job launches after its setup must have been queued by the setup callback (the
interpreter compiles nothing, but the fused path runs and names its variants exactly as a
GPU compile is keyed). The background queue itself (compiles on threads, a launch waiting
for its own compile instead of compiling it again) is checked with a stand-in kernel: Triton
compiles only for a GPU, which CI lacks.
"""

from __future__ import annotations

import json
import os
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from scsa_yolo.child_process import python_command

ROOT = Path(__file__).resolve().parents[1]
#: validation images of assorted aspect ratios: Ultralytics' rectangular batches differ in shape
VAL_SIZES = [(64, 40), (40, 64), (64, 64), (64, 24), (30, 64)]


def _write_dataset(root: Path) -> Path:
    rng = np.random.default_rng(0)
    for split, sizes in (("train", [(64, 64)] * 5), ("val", VAL_SIZES)):
        (root / "images" / split).mkdir(parents=True)
        (root / "labels" / split).mkdir(parents=True)
        for i, (h, w) in enumerate(sizes):
            Image.fromarray(rng.integers(0, 255, (h, w, 3), dtype=np.uint8)).save(root / "images" / split / f"{i}.png")
            (root / "labels" / split / f"{i}.txt").write_text("0 0.5 0.5 0.4 0.4\n")
    (root / "data.yaml").write_text(f"path: {root}\ntrain: images/train\nval: images/val\nnames:\n  0: box\n")
    return root / "data.yaml"


def test_the_callbacks_find_what_they_read_in_the_installed_trainer():
    """Touch points 1-3 against the installed Ultralytics: the setup callback runs after the
    loaders, the device, the memory format and AMP are settled, and the end callback after
    the final validation; rectangular datasets keep a shape per batch."""
    from ultralytics.data import dataset
    from ultralytics.engine import trainer
    from ultralytics.utils.callbacks.base import default_callbacks, get_default_callbacks

    from scsa_yolo.integration import register
    from scsa_yolo.integration.job_kernels import _queue_job_kernels, _report_job_kernels

    register()
    assert _queue_job_kernels in get_default_callbacks()["on_pretrain_routine_end"]
    assert _report_job_kernels in default_callbacks["on_train_end"]
    register()  # idempotent: still once each
    assert default_callbacks["on_pretrain_routine_end"].count(_queue_job_kernels) == 1
    source = Path(trainer.__file__).read_text()
    setup = source[source.index("def _setup_train"):source.index("def _do_train")]
    end = setup.index('self.run_callbacks("on_pretrain_routine_end")')
    for needed in ("self.model = self.model.to(memory_format=torch.channels_last)", "self.amp = bool(self.amp)",
                   "self._build_train_pipeline()"):
        assert -1 < setup.index(needed) < end, needed
    assert "self.test_loader = self.get_dataloader(" in source
    train = source[source.index("def _do_train"):]
    assert -1 < train.index("self.final_eval()") < train.index('self.run_callbacks("on_train_end")')
    assert "self.batch_shapes = " in Path(dataset.__file__).read_text() or "self.batch_shapes = " in Path(
        dataset.__file__).with_name("base.py").read_text()


def test_the_switch_turns_the_setup_callback_off(monkeypatch):
    """SCSA_YOLO_COMPILE_AHEAD=0 (or off, false, no): the callback returns before it reads the trainer (given none
    here, reading it would raise); unset or anything else: on."""
    from scsa_yolo.integration import job_kernels

    for off in ("0", "off", "False"):
        monkeypatch.setenv(job_kernels.COMPILE_AHEAD_ENV, off)
        assert job_kernels.compile_ahead_enabled() is False
        assert job_kernels._queue_job_kernels(None) is None
    monkeypatch.setenv(job_kernels.COMPILE_AHEAD_ENV, "1")
    assert job_kernels.compile_ahead_enabled() is True
    with pytest.raises(AttributeError):
        job_kernels._queue_job_kernels(None)
    monkeypatch.delenv(job_kernels.COMPILE_AHEAD_ENV)
    assert job_kernels.compile_ahead_enabled() is True


def test_loader_batches_lists_each_batch_kind_once(tmp_path):
    """A rectangular validation set: one (images, shape) per batch as Ultralytics forms them,
    the last batch holding the rest; a square set: imgsz."""
    from ultralytics.data.build import build_dataloader
    from ultralytics.data.dataset import YOLODataset

    from scsa_yolo.integration.job_kernels import loader_batches

    data = _write_dataset(tmp_path)
    images = str(data.parent / "images" / "val")
    for rect, expect_shapes in ((True, None), (False, {(64, 64)})):
        ds = YOLODataset(img_path=images, imgsz=64, augment=False, rect=rect, batch_size=2, stride=32, pad=0.5,
                         data={"names": {0: "box"}, "channels": 3})
        loader = build_dataloader(ds, batch=2, workers=0, shuffle=False)
        batches = loader_batches(loader, 64)
        formed = []
        for batch in loader:
            formed.append((batch["img"].shape[0], tuple(batch["img"].shape[2:])))
        assert sorted(set(formed)) == sorted(batches), (formed, batches)
        assert sum(count for count, _ in formed) == len(VAL_SIZES)
        if expect_shapes:
            assert {shape for _, shape in batches} == expect_shapes
        else:
            assert len({shape for _, shape in batches}) > 1  # the aspect ratios make several shapes


@pytest.mark.slow
def test_a_stock_training_job_launches_only_kernels_its_setup_queued(tmp_path):
    """A real `YOLO.train` (1 epoch, rectangular validation of mixed aspect ratios, the final
    validation of best.pt) in the interpreter: the setup callback queues the variants, and
    none of those the job launches afterwards was missing from the queue."""
    data = _write_dataset(tmp_path / "data")
    code = (
        "import json\n"
        "from ultralytics import YOLO\n"
        "from scsa_yolo.nn import scsa_fast\n"
        f"YOLO('yolov8n-scsa.yaml').train(data={str(data)!r}, epochs=1, imgsz=64, batch=2, workers=0,\n"
        f"    device='cpu', plots=False, project={str(tmp_path / 'runs')!r}, name='r', seed=0, amp=False)\n"
        "print('STATS ' + json.dumps(scsa_fast.kernel_stats()['ahead']))\n")
    env = dict(os.environ, SCSA_YOLO_TRITON_INTERPRET="1", TRITON_CACHE_DIR=str(tmp_path / "triton"),
               YOLO_OFFLINE="1", YOLO_CONFIG_DIR=str(tmp_path / "yolo"))
    env.pop("SCSA_YOLO_IMPL", None)
    env.pop("SCSA_YOLO_COMPILE_AHEAD", None)
    done = __import__("subprocess").run(python_command(code), capture_output=True, text=True, env=env,
                                        cwd=tmp_path, timeout=1200)
    assert done.returncode == 0, done.stderr[-3000:]
    stats = json.loads(done.stdout.split("STATS ")[1].splitlines()[0])
    log = done.stdout + done.stderr
    # 5 training images in batches of 2 (2 and 1), 5 validation images in one of 4 and one of 1
    assert "queued to compile (recorded only) for 2 training and 2 validation batch kind(s), planned in " in log, \
        log[-3000:]
    assert stats["plan_s"] > 0, stats
    assert stats["queued"] >= 10 and stats["used"] >= 10, stats  # five forward + five backward kernels at least
    assert stats["unpredicted"] == 0, stats
    assert f"compiled ahead: {stats['used']} of {stats['queued']} launched (0 compiled at their launch" in log
    assert "; 0 compiled at first launch (not predicted)" in log


class _StandInKernel:
    """What the launcher uses of a ``triton.jit`` kernel: ``warmup`` compiles (here: sleeps
    and records the thread), ``fn[grid](...)`` launches, compiling first when not compiled."""

    arg_names = ["x", "n"]

    def __init__(self, compile_s: float) -> None:
        self.fn = self
        self.__name__ = "stand_in_kernel"
        self.compile_s = compile_s
        self.compiled: list[str] = []
        self.done = threading.Event()

    def warmup(self, *args, grid, **consts):
        time.sleep(self.compile_s)
        self.compiled.append(threading.current_thread().name)
        self.done.set()

    def __getitem__(self, grid):
        def launch(*args, **consts):
            if not self.done.is_set():
                self.compiled.append("at launch")
                self.done.set()
        return launch


def test_queued_compiles_run_in_the_background_and_a_launch_waits_for_its_own(monkeypatch):
    import torch

    from scsa_yolo.nn import scsa_fast

    monkeypatch.setitem(scsa_fast._kernel_state, "interpreted", False)
    monkeypatch.setattr(scsa_fast, "_variant_key", lambda fn, args, consts: (fn.__name__, tuple(sorted(consts))))
    launcher = scsa_fast._Launcher()
    launcher.ahead_threads = 2
    monkeypatch.setattr(scsa_fast._Launcher, "direct_ok", False)
    kernel = _StandInKernel(compile_s=0.5)
    x = torch.zeros(4)
    launch = (kernel, ("k",), (1,), [x, 4], (), {"BLOCK": 4})
    start = time.perf_counter()
    launcher.queue_ahead([launch], x.device)
    queued_s = time.perf_counter() - start
    assert queued_s < kernel.compile_s  # returned before the compile finished
    assert launcher.ahead and not kernel.compiled
    launcher.queue_ahead([launch], x.device)  # queued once
    assert len(launcher.ahead) == 1
    launcher(*launch)  # waits for the background compile, does not compile at launch
    assert kernel.compiled == ["scsa-ahead_0"], kernel.compiled
    assert launcher.ahead_wait_s > 0.2 and len(launcher.ahead_used) == 1
    launcher(*launch)
    assert kernel.compiled == ["scsa-ahead_0"]


def test_the_final_validation_layout_follows_autobackend():
    """The final validation runs best.pt through Ultralytics' AutoBackend, which picks its own
    memory format (channels-last on an x86 CPU by default, contiguous on a GPU unless asked):
    the kernels are compiled per layout, so the warm-up and compile-ahead must follow it (in
    the interpreter, a job launched 17 channels-last variants its contiguous prediction lacked)."""
    import torch
    from ultralytics import YOLO
    from ultralytics.nn.autobackend import AutoBackend

    from scsa_yolo.integration.training import autobackend_channels_last
    from scsa_yolo.nn.scsa_warmup import validation_passes

    for asked in (None, False, True):
        backend = AutoBackend(model=YOLO("yolov8n.yaml").model, device=torch.device("cpu"), fuse=False,
                              verbose=False, channels_last=asked)
        weight = next(p for p in backend.model.parameters() if p.dim() == 4 and p.shape[-1] > 1)
        assert weight.is_contiguous(memory_format=torch.channels_last) is autobackend_channels_last("cpu", asked)
    assert autobackend_channels_last("cuda") is False and autobackend_channels_last("cuda", True) is True
    assert [p.channels_last for p in validation_passes(True, True, final_channels_last=True)] == [True, True]
    assert [p.channels_last for p in validation_passes(False, False, final_channels_last=True)] == [False, True]
    assert validation_passes(False, True, final_channels_last=True)[-1].label == "validation, channels-last"


@pytest.mark.parametrize("channels_last", [False, True])
def test_planning_one_image_for_a_batch_names_the_batchs_variants(monkeypatch, channels_last):
    """compile_ahead(batch=n) plans a single image's call as n images: the job's shadow passes
    run one image per input kind, and some tiles depend on the batch (at 64 x 40 x 40 the
    pooling pass splits channels finer for 1 image than for 32), so the variants queued must be
    those of the batch, forward and backward."""
    import torch

    from scsa_yolo.nn import scsa_fast
    from scsa_yolo.nn.scsa import SCSA

    layer = SCSA(64)
    cfg, params = scsa_fast._config(layer), tuple(scsa_fast._params(layer))
    layout = torch.channels_last if channels_last else torch.contiguous_format

    def queued(images: int, batch: int | None) -> set:
        launcher = scsa_fast._Launcher()
        launcher.ahead_threads = 0  # record only: nothing compiles without a GPU
        monkeypatch.setattr(scsa_fast, "_launch", launcher)
        x = torch.rand(images, 64, 40, 40).to(memory_format=layout).requires_grad_(True)
        with scsa_fast.compile_ahead(batch=batch):
            scsa_fast._fused_apply(x, cfg, params).sum().backward()
        assert x.grad is not None and x.grad.shape == x.shape
        return set(launcher.ahead)

    full = queued(32, None)
    assert len(full) == 10  # five forward and five backward kernels
    assert queued(1, 32) == full
    assert queued(1, None) != full  # the batch does change a variant here


def test_each_pass_plans_in_its_own_layout_whatever_the_model_handed_in(monkeypatch):
    """On a GPU the trainer hands compile-ahead its model already in channels-last memory,
    while the final validation's AutoBackend runs a contiguous copy: each pass must set its
    copy's layout itself. On an H100 a job whose final-validation copy kept the trainer's
    layout launched 44 variants it had not queued and queued 24 it never launched."""
    import torch
    from torch import nn

    from scsa_yolo.nn import scsa_fast
    from scsa_yolo.nn.scsa import SCSA
    from scsa_yolo.nn.scsa_warmup import warm_up

    monkeypatch.setattr(scsa_fast, "_device_reason", lambda device_type: None)  # plan on the CPU, launch nothing

    def queued(model_layout, final_channels_last: bool) -> set:
        launcher = scsa_fast._Launcher()
        launcher.ahead_threads = 0  # record only
        monkeypatch.setattr(scsa_fast, "_launch", launcher)
        net = nn.Sequential(nn.Conv2d(3, 64, 3, stride=4, padding=1), SCSA(64)).to(memory_format=model_layout)
        warm_up(net, imgsz=64, device="cpu", amp=False, channels_last=True, final_channels_last=final_channels_last,
                train_batches=[(4, (64, 64))], val_batches=[(8, (64, 64))], plan_only=True)
        return set(launcher.ahead)

    from_contiguous = queued(torch.contiguous_format, final_channels_last=False)
    assert queued(torch.channels_last, final_channels_last=False) == from_contiguous
    # the contiguous final validation has variants of its own, which a channels-last one lacks
    assert queued(torch.channels_last, final_channels_last=True) < from_contiguous


def test_a_launch_compiles_a_queued_variant_itself_when_no_thread_has_started_it(monkeypatch):
    """One thread, two queued compiles: the second one's launch comes while the first still
    compiles, so it takes its variant off the queue and compiles it at once instead of waiting
    behind the first."""
    import torch

    from scsa_yolo.nn import scsa_fast

    monkeypatch.setitem(scsa_fast._kernel_state, "interpreted", False)
    monkeypatch.setattr(scsa_fast, "_variant_key", lambda fn, args, consts: (fn.__name__,))
    monkeypatch.setattr(scsa_fast._Launcher, "direct_ok", False)
    launcher = scsa_fast._Launcher()
    launcher.ahead_threads = 1
    slow, second = _StandInKernel(compile_s=0.5), _StandInKernel(compile_s=0.5)
    second.__name__ = "second_kernel"
    x = torch.zeros(4)
    launcher.queue_ahead([(slow, ("a",), (1,), [x, 4], (), {}), (second, ("b",), (1,), [x, 4], (), {})],
                         x.device)
    start = time.perf_counter()
    launcher(second, ("b",), (1,), [x, 4], (), {})
    assert second.compiled == ["at launch"] and time.perf_counter() - start < 0.4
    assert launcher.ahead_taken_back == 1 and launcher.ahead_wait_s == 0.0
    launcher(slow, ("a",), (1,), [x, 4], (), {})  # the first was running: its launch waits for it
    assert slow.compiled == ["scsa-ahead_0"] and launcher.ahead_wait_s > 0.1
