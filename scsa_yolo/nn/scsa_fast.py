"""Fused SCSA: Triton kernels with their own backward, same numbers as the reference.

The reference SCSA (:meth:`scsa_yolo.nn.scsa.SCSA.forward_reference`) launches some
twenty kernels and reads or writes the (B, C, H, W) map about ten times in the forward
pass. Everything SCSA computes between the first read of ``x`` and the output is small
((B, C, H), (B, C, W), (B, C, N) with N = (H/7)(W/7)), so the map itself needs only:

forward (3 reads + 1 write of x, 5 launches)
    1. reduce x along W and H              -> X_H (B, C, H), X_W (B, C, W)
    2. conv + GroupNorm + sigmoid (tiny)   -> a_h, a_w
    3. pool x * a_h * a_w per 7x7 window, without storing that product -> (B, C, N)
       (plus per-channel token sums for the GroupNorm(1) statistics)
    4. GroupNorm(1) + channel attention (tiny), split over key blocks -> softmax partials
    5. merge the partials into the gate (B, C); out = x * a_h * a_w * gate
    (maps up to TUNE["small_map_max"] pixels, 20 x 20 by default, of at most
    TUNE["small_max_channels"] channels, in batches of at least
    TUNE["small_min_programs"] / groups samples: 2 launches, 1-3 per channel group, 4-5
    per block of query channels; the same workspace for the backward)

backward (dout and x read once, dout once more, dx written once; 5 launches)
    1. one pass over dout and x: every reduction of dout * x the small graph needs
    2. channel-attention backward (tiny)
    3. gate / conv backward (tiny)
    4. dx = a_h a_w (dout * gate + dP / area) + dX_H / W + dX_W / H
    5. per-sample parameter gradients summed into one flat buffer (tiny)

Only x and small tensors are saved for the backward (never x * a_h * a_w). All
arithmetic is float32 whatever the input dtype (the reference rounds its gates to the
input dtype; the fused path rounds once, at the output), so the fused path is at least
as close to a float32 reference as the reference itself is in fp16/bf16.

Selection: :func:`supports` accepts the paper's SCSA (any channel count divisible by the
group count, up to four groups with any odd kernel sizes, any window, both attention
scalings) on CUDA tensors of dtype float16, bfloat16 or float32, with parameters of one
dtype. Kernels are stride-aware, so channels_last (or sliced) inputs are read in place,
not copied; the output keeps the input's memory format. Everything else (ablations
without SMSA/PCSA, other norms, several heads, unshared convolutions, global pooling,
export/tracing) runs the reference. For tests on machines without a GPU,
``SCSA_YOLO_TRITON_INTERPRET=1`` (set before anything imports triton) runs the same
kernels in Triton's CPU interpreter on CPU tensors. The parameters are the module's own,
so checkpoints move freely between the two paths.

Kernels are compiled per layer configuration, not per map size: H, W and the strides are
run-time arguments, and the tiles depend on the sizes only through a few buckets (powers
of two of the padded sides and the like, see :class:`_Plan`). The first call of a new
bucket compiles its kernels (about a second each; Triton keeps them in its cache folder,
``TRITON_CACHE_DIR``, so later processes load them), a new size within a bucket only
plans its launches (microseconds), and later calls launch the compiled kernels directly.
:func:`kernel_stats` counts the variants a process has compiled or loaded. Inside
:func:`compile_ahead` the fused calls only plan their launches and queue the compiles of the
variants they would need in background threads (nothing is launched, outputs are left
uninitialised): a training job does this for all its input kinds before its first batch,
and each launch then waits only for its own kernel. A layer's
structure is read once and cached: change its configuration attributes after the first
call and the cache is stale.

torch.compile: the same kernels are registered as the operators
``torch.ops.scsa_yolo.fused_forward`` and ``fused_backward`` (fake implementations and an
autograd formula included), and a compiled layer calls them: one node in the forward graph,
one in the backward graph, no graph break (``SCSA_YOLO_FAST_COMPILE=0`` compiles the
reference instead). Eager calls use an autograd Function instead, which costs less host
time per call than the dispatcher.
"""

from __future__ import annotations

import contextlib
import importlib
import itertools
import math
import os
import time
import sys
import weakref
from dataclasses import dataclass
from types import ModuleType, SimpleNamespace

import torch
from torch import nn
from torch.autograd.function import once_differentiable

__all__ = ["supports", "scsa_forward", "unsupported_reason", "INTERPRET_ENV_VAR"]

#: Run the kernels in Triton's CPU interpreter (tests without a GPU). Read when the kernels
#: are first loaded and by :func:`supports` on every call.
INTERPRET_ENV_VAR = "SCSA_YOLO_TRITON_INTERPRET"

_MAX_GROUPS = 4
_MAX_KERNEL = 31
_MAX_TOKENS = 1024
_MAX_CHANNELS = 16384
_MAX_GATE_TILE = 1 << 16  # (C/K rounded up) x (max(H, W) rounded up), kept in registers
_INT32_LIMIT = 2**31 - 1


def _env_count(name: str, default: int, example: str) -> int:
    """A count (at least 1) from the environment variable ``name``, else ``default``; a value
    that is not a whole number is one error naming the variable."""
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    try:
        return max(1, int(raw))
    except ValueError:
        raise ValueError(f"{name}={raw!r} is not a whole number; use e.g. {example}") from None


def _compile_threads(default: int) -> int:
    return _env_count("SCSA_YOLO_COMPILE_THREADS", default, "8, or 1 to compile each kernel at its first launch")


#: Most input kinds (shape, strides, dtypes) whose launch plans are kept per process; the
#: oldest plan is dropped for a new one. A plan compiles nothing: kernels are compiled per
#: layer configuration and size bucket (see _Plan), and Triton keeps those.
MAX_SHAPES = _env_count("SCSA_YOLO_FAST_MAX_SHAPES", 64, "64")
#: Threads that compile a launch group's new kernel variants side by side before their first
#: launch (the five forward or backward kernels of a new input kind; Triton's AsyncCompileMode):
#: a cold group then waits for its slowest kernel instead of the sum of all five. "1" compiles
#: each kernel at its first launch, one after another. Read at import.
COMPILE_THREADS = _compile_threads(min(8, os.cpu_count() or 1))
#: Under ``torch.compile`` the layer calls the fused kernels as the custom operators
#: ``torch.ops.scsa_yolo.fused_forward`` / ``fused_backward`` (default); "0" compiles the
#: reference formulation instead, as before the operators existed. Read at import.
COMPILE_OPS = os.environ.get("SCSA_YOLO_FAST_COMPILE", "1").strip() != "0"
#: Eager calls go through the same operators instead of the autograd Function ("1"; for
#: measuring the dispatcher's host cost, which the Function does not pay). Read at import.
EAGER_OPS = os.environ.get("SCSA_YOLO_FAST_EAGER_OPS", "").strip() == "1"


# ----------------------------------------------------------------------------- kernel loading

_kernel_state: dict[str, object] = {}


def _interpret_requested() -> bool:
    return os.environ.get(INTERPRET_ENV_VAR, "").strip() == "1" or os.environ.get("TRITON_INTERPRET", "") == "1"


def _import_triton() -> str | None:
    """Import triton (in interpreter mode when requested); returns why it is unusable, or None.

    Triton fixes the interpreter choice when ``triton.language`` is first imported, so in
    interpreter mode ``TRITON_INTERPRET=1`` must be set before that import (and stays set:
    triton.language cannot be re-imported).
    """
    if "triton_error" not in _kernel_state:
        if _interpret_requested() and "triton" not in sys.modules:
            os.environ["TRITON_INTERPRET"] = "1"
        try:
            import triton.language as tl  # noqa: PLC0415

            interpreted = type(tl.zeros).__name__ == "InterpretedFunction"
            _kernel_state["interpreted"] = interpreted
            _kernel_state["triton_error"] = None
            if _interpret_requested() and not interpreted:
                _kernel_state["triton_error"] = (
                    f"{INTERPRET_ENV_VAR}=1 but triton was imported before it was set "
                    "(set it before anything imports triton)"
                )
        except ImportError as exc:
            _kernel_state["triton_error"] = f"triton cannot be imported ({exc})"
    return _kernel_state["triton_error"]  # type: ignore[return-value]


def _triton_reason() -> str | None:
    """:func:`_import_triton` for the support check, safe to call while Dynamo traces."""
    return _import_triton()


# Under torch.compile, Dynamo runs _triton_reason at trace time and keeps its answer as a
# constant instead of tracing Triton's objects: on torch 2.11, tracing `type(tl.zeros)` broke
# the graph (24 breaks in a YOLOv8n-SCSA whose first call was compiled, as in Ultralytics'
# trainer). This is what torch.compiler.assume_constant_result sets; calling that here would
# import torch._dynamo, and with it triton, when scsa_yolo is imported.
_triton_reason._dynamo_marked_constant = True  # type: ignore[attr-defined]


def _kernels() -> SimpleNamespace:
    """The Triton kernel modules, imported on first use."""
    if "ns" not in _kernel_state:
        error = _import_triton()
        if error is not None:
            raise RuntimeError(f"SCSA fused kernels unavailable: {error}")
        fwd: ModuleType = importlib.import_module("scsa_yolo.nn._scsa_kernels.forward")
        bwd: ModuleType = importlib.import_module("scsa_yolo.nn._scsa_kernels.backward")
        if bwd.SLOTS["conv_w"] != _SLOT_CONV_W:
            raise RuntimeError("scsa_fast and its backward kernels disagree on the gradient slots")
        _kernel_state["ns"] = SimpleNamespace(fwd=fwd, bwd=bwd, slots=bwd.SLOTS)
    return _kernel_state["ns"]  # type: ignore[return-value]


# ----------------------------------------------------------------------------- support check


@dataclass(frozen=True)
class _Config:
    """Static description of one SCSA layer, enough to plan the launches."""

    channels: int
    kernel_sizes: tuple[int, ...]
    window: int
    eps_h: float
    eps_w: float
    eps_p: float
    scale_mode: str  # 'channels' (1/sqrt(C)) or 'tokens' (1/sqrt(N))


def _is_depthwise_conv1d(conv: object, channels: int) -> bool:
    return (
        isinstance(conv, nn.Conv1d)
        and conv.in_channels == channels
        and conv.out_channels == channels
        and conv.groups == channels
        and conv.stride == (1,)
        and conv.dilation == (1,)
        and conv.padding_mode == "zeros"
        and conv.kernel_size[0] % 2 == 1
        and conv.kernel_size[0] <= _MAX_KERNEL
        and conv.padding == (conv.kernel_size[0] // 2,)
        and conv.bias is not None
    )


def _is_group_norm(norm: object, groups: int, channels: int) -> bool:
    return (
        isinstance(norm, nn.GroupNorm)
        and norm.num_groups == groups
        and norm.num_channels == channels
        and norm.affine
    )


def _is_channel_scale(proj: object, channels: int) -> bool:
    return (
        isinstance(proj, nn.Conv2d)
        and proj.in_channels == channels
        and proj.out_channels == channels
        and proj.groups == channels
        and proj.kernel_size == (1, 1)
        and proj.stride == (1, 1)
        and proj.padding == (0, 0)
        and proj.dilation == (1, 1)
        and proj.bias is None
    )


def _module_reason(module: nn.Module) -> str | None:
    """Why the fused path cannot run this layer's configuration (None: it can)."""
    expected = dict(use_smsa=True, use_pcsa=True, order="smsa_first", norm="gn", norm_position="after",
                    num_heads=1, channel_shuffle=False, shared=True)
    for name, value in expected.items():
        if getattr(module, name, None) != value:
            return f"{name}={getattr(module, name, None)!r} (fused path needs {value!r})"
    if getattr(module, "scale_mode", None) not in ("channels", "tokens"):
        return f"scale_mode={getattr(module, 'scale_mode', None)!r}"
    window = getattr(module, "window", None)
    if not isinstance(window, int) or isinstance(window, bool) or window < 1:
        return f"window={window!r} (global pooling runs the reference)"
    channels = getattr(module, "channels", None)
    convs = getattr(module, "dwconvs", None)
    if not isinstance(channels, int) or not isinstance(convs, nn.ModuleList) or not 1 <= len(convs) <= _MAX_GROUPS:
        return f"needs 1..{_MAX_GROUPS} depth-wise conv groups"
    groups = len(convs)
    if channels % groups or channels > _MAX_CHANNELS:
        return f"channels={channels}"
    if not all(_is_depthwise_conv1d(conv, channels // groups) for conv in convs):
        return "dwconvs are not depth-wise 'same' Conv1d with bias and odd kernels"
    if not (_is_group_norm(module.norm_h, groups, channels) and _is_group_norm(module.norm_w, groups, channels)):
        return "norm_h / norm_w are not affine GroupNorm(K, C)"
    if not _is_group_norm(module.norm_pcsa, 1, channels):
        return "norm_pcsa is not an affine GroupNorm(1, C)"
    if not all(_is_channel_scale(getattr(module, p, None), channels) for p in ("q", "k", "v")):
        return "q / k / v are not bias-free depth-wise 1x1 Conv2d"
    return None


def _config(module: nn.Module) -> _Config:
    return _Config(
        channels=module.channels,
        kernel_sizes=tuple(conv.kernel_size[0] for conv in module.dwconvs),
        window=module.window,
        eps_h=float(module.norm_h.eps),
        eps_w=float(module.norm_w.eps),
        eps_p=float(module.norm_pcsa.eps),
        scale_mode=module.scale_mode,
    )


def _params(module: nn.Module) -> list[torch.Tensor]:
    """Parameters in the order the autograd function takes them (see :class:`_Params`).

    Read through the modules' parameter dicts: this runs on every call, and
    ``nn.Module.__getattr__`` is slow.
    """
    mods = module._modules
    convs = [conv._parameters for conv in mods["dwconvs"]._modules.values()]
    norm_h, norm_w, norm_p = (mods[n]._parameters for n in ("norm_h", "norm_w", "norm_pcsa"))
    return (
        [conv["weight"] for conv in convs]
        + [conv["bias"] for conv in convs]
        + [norm_h["weight"], norm_h["bias"], norm_w["weight"], norm_w["bias"], norm_p["weight"], norm_p["bias"],
           mods["q"]._parameters["weight"], mods["k"]._parameters["weight"], mods["v"]._parameters["weight"]]
    )


# Per layer: (configuration-level reason or None, _Config or None). A layer's structure
# does not change after construction; its parameters' dtype/device may, and are checked
# on every call.
_module_cache: "weakref.WeakKeyDictionary[nn.Module, tuple[str | None, _Config | None]]" = weakref.WeakKeyDictionary()


def _module_info(module: nn.Module) -> tuple[str | None, _Config | None]:
    info = _module_cache.get(module)
    if info is None:
        reason = _module_reason(module)
        info = (reason, None if reason is not None else _config(module))
        _module_cache[module] = info
    return info


def _device_reason(device_type: str) -> str | None:
    """Why tensors on this device type cannot run the kernels (None: they can)."""
    if device_type == "cpu":
        if not _interpret_requested():
            return f"CPU tensor (set {INTERPRET_ENV_VAR}=1 to run the kernels in Triton's interpreter)"
    elif device_type != "cuda":
        return f"device {device_type}"
    triton_error = _triton_reason()
    if triton_error is not None:
        return triton_error
    if device_type == "cpu" and not _kernel_state.get("interpreted"):
        return "CPU tensor but triton is in compiled (GPU) mode"
    return None


def runs_fused_on(device_type: str) -> bool:
    """Whether supported layers run the fused kernels on this device type (``"cuda"``, or
    ``"cpu"`` in Triton's interpreter)."""
    return _device_reason(device_type) is None


def _input_reason(cfg: _Config, x: torch.Tensor, params: list[torch.Tensor]) -> str | None:
    """Why the kernels cannot take this input and these parameters for a supported
    layer configuration (None: they can). x is a 4-D tensor of a supported dtype."""
    b, c, h, w = x.shape
    if c != cfg.channels:
        return f"input has {c} channels, layer expects {cfg.channels}"
    if min(b, h, w) < 1:
        return "empty input"
    if x.numel() > _INT32_LIMIT or max(s * (n - 1) for s, n in zip(x.stride(), x.shape)) > _INT32_LIMIT:
        return "input too large for 32-bit indexing"
    win_h, win_w = min(cfg.window, h), min(cfg.window, w)
    if (h // win_h) * (w // win_w) > _MAX_TOKENS:
        return f"more than {_MAX_TOKENS} PCSA tokens"
    # _p2(group) * _p2(side) > tile, written without rounding the side (a symbolic size
    # under torch.compile): for a power of two P, _p2(side) > P exactly when side > P.
    group_tile = _p2(c // len(cfg.kernel_sizes))
    if group_tile > _MAX_GATE_TILE or max(h, w) > _MAX_GATE_TILE // group_tile:
        return "channel group x map side too large for one gate tile"
    for p in params:
        if p.device != x.device or p.dtype != params[0].dtype or not p.is_contiguous():
            return "parameters must be contiguous, on the input's device, all of one dtype"
    if params[0].dtype not in (torch.float16, torch.bfloat16, torch.float32):
        return f"parameter dtype {params[0].dtype}"
    return None


def unsupported_reason(module: nn.Module, x: torch.Tensor) -> str | None:
    """Why :func:`supports` says no for this layer and input (None when it says yes).

    Under ``torch.compile`` this runs while Dynamo traces the layer: the answer is fixed
    in the graph, under guards on the input's shape, strides and dtype and on the
    layer's attributes. So the traced branch avoids the weak-reference caches and the
    per-process compiled-shape limit (the compiled graph has its own recompile limit).
    """
    compiling = torch.compiler.is_compiling()
    if compiling and not COMPILE_OPS:
        return "torch.compile tracing with SCSA_YOLO_FAST_COMPILE=0 (the reference path compiles)"
    if not isinstance(x, torch.Tensor) or x.dim() != 4:
        return "input is not a 4-D tensor"
    if x.dtype not in (torch.float16, torch.bfloat16, torch.float32):
        return f"dtype {x.dtype}"
    reason = _device_reason(x.device.type)
    if reason is not None:
        return reason
    if compiling:
        reason = _module_reason(module)
        cfg = None if reason is not None else _config(module)
    else:
        reason, cfg = _module_info(module)
    if reason is not None:
        return reason
    params = _params(module)
    reason = _input_reason(cfg, x, params)
    return reason


_verdicts: "weakref.WeakKeyDictionary[nn.Module, tuple[tuple, bool]]" = weakref.WeakKeyDictionary()


def supports(module: nn.Module, x: torch.Tensor) -> bool:
    """True when :func:`scsa_forward` can run this layer on this input.

    Runs on every forward call, so the verdict is remembered per layer for the last kind
    of input (shape, strides, dtype, device, parameter dtype/device, interpreter mode).
    """
    if not isinstance(x, torch.Tensor):
        return False
    if torch.compiler.is_compiling():  # traced once per graph; see unsupported_reason
        return unsupported_reason(module, x) is None
    try:
        wq = module._modules["q"]._parameters["weight"]
        key = (x.shape, x.stride(), x.dtype, x.device, wq.dtype, wq.device, _interpret_requested())
    except (KeyError, AttributeError, TypeError):
        return unsupported_reason(module, x) is None
    cached = _verdicts.get(module)
    if cached is not None and cached[0] == key:
        return cached[1]
    verdict = unsupported_reason(module, x) is None
    _verdicts[module] = (key, verdict)
    return verdict


# ----------------------------------------------------------------------------- launch planning


def _p2(n: int) -> int:
    """Smallest power of two >= n (>= 1)."""
    return 1 << max(0, (int(n) - 1).bit_length())


def _p2_floor(n: int) -> int:
    """Largest power of two <= n (1 for n < 1)."""
    return 1 << max(0, int(n).bit_length() - 1)


def _runs(width: int) -> tuple[int, int]:
    """Split ``width`` columns into a dense power-of-two run and a tail run (0 if none):
    80 -> (64, 16), 77 -> (64, 16), 66 -> (64, 8), 40 -> (32, 8), 35 -> (32, 4),
    13 -> (8, 8). The tail is rounded up to a power of two of at least an eighth of the
    main run, so the widths between two powers of two share at most four tilings
    (compiled variants), and masked (or, in the pooling pass, read past the pooled
    columns, which are inside the row when there are any)."""
    main = _p2_floor(width)
    return main, (max(_p2(width - main), main // 8) if width > main else 0)


def _row_block(h: int) -> int:
    """Rows per block: the largest power of two dividing h, within 4..16 (masked
    blocks of min(8, p2(h)) rows when that is below 4)."""
    bh = h & -h
    if bh < 4:
        bh = min(_p2(h), 8)
    return min(bh, 16)


#: Tile sizes (elements per program and iteration) and warps of the streaming kernels.
#: ``SCSA_YOLO_FAST_TUNE="plane_tile=4096,pool_warps=8"`` overrides entries (benchmarks).
TUNE: dict[str, int] = {
    # X_H/X_W reduction (R): elements per loop step. One warp per program: with more, the
    # cross-warp reductions and layout changes went through shared memory with bank
    # conflicts, and those wavefronts, not DRAM, bounded the pass (Nsight Compute).
    "plane_tile": 1024, "plane_warps": 1,
    "apply_tile": 4096, "apply_warps": 4,  # output pass: elements per program
    "pool_tile": 4096, "pool_warps": 1,  # pooling pass: elements of x per program (one window row); one warp as R
    "min_programs": 1024,  # pooling pass: narrower channel blocks until the grid has this many
    "pool_reverse": 1,  # pooling pass walks the samples last to first (L2 still holds what R read last)
    "pcsa_key_tile": 4096, "pcsa_warps": 4,  # channel attention: key channels x tokens per program
    # ... 64 x 64 channel blocks and 8 warps from this many (padded) tokens and channels (0: never)
    "pcsa_wide_tokens": 128, "pcsa_wide_channels": 128,
    "bred_tile": 1024, "bred_warps": 1,  # backward reduction (x and dout); one warp, as R
    "dx_tile": 1024, "dx_warps": 1,  # dx pass
    # Small maps: the forward in two launches (S1, S2) up to this many pixels per map
    # (H * W; 0: never). 448 takes 20 x 20 and 21 x 21 (Ultralytics' 672-pixel rect
    # batches at stride 32). S1 streams chunks of small_tile elements with small_warps
    # warps: one program per SM at batch 32, so many loads in flight; with one warp the
    # gates' (Cg, H) tiles spill (sm_90, offline compile: 2.7 KB of stack at C = 256),
    # with eight none do (94 registers at C = 256, 156 at 512). S2 takes small_queries
    # channels and writes out in tiles of at most small_out_tile elements.
    # small_min_programs: the fewest S1 programs (B x groups) for which the small path is
    # taken (0: any batch). 128, about one program per SM of an H100 / H200 (132 SMs):
    # batch 32 at four groups. Below that S1 cannot use the GPU: each program walks its
    # group's channels alone, so its time stays that of batch 1, and at batch 1 (four
    # programs) the small path measured slower than the five launches (H100, graph
    # replay, fp16, us: 43 vs 33 at (256, 20, 20), 61 vs 34 at (512, 20, 20), level at
    # (64, 20, 20); results/perf/small_maps_h100).
    # small_max_channels: the widest layer that takes the small path. On an H200 (graph
    # replay, fp16, batches 1-32; results/perf/h200_session15) it won only at 64 channels
    # (1.02-1.16x) and lost at 256 and 512 (0.44-0.87x at 20 x 20): the per-group walk of
    # S1 grows with C where the five launches spread it over more programs. YOLO's 20 x 20
    # layers have 256 channels and more, so they keep the five launches.
    "small_map_max": 448, "small_min_programs": 128, "small_max_channels": 64,
    "small_tile": 8192, "small_warps": 8, "small_queries": 16,
    "small_out_tile": 4096, "small_out_warps": 4,
}
for _item in filter(None, os.environ.get("SCSA_YOLO_FAST_TUNE", "").split(",")):
    _name, _, _value = _item.partition("=")
    if _name.strip() in TUNE:
        TUNE[_name.strip()] = int(_value)


def _unit_axis(strides: tuple[int, ...]) -> int:
    """The axis (W, then C, H, B) whose stride is 1, or -1: the kernels' XU / OU / DU."""
    for axis in (3, 1, 2, 0):
        if strides[axis] == 1:
            return axis
    return -1


def _alignment(cap: int, *values: int) -> int:
    """The kernels' AL: the largest power of two up to ``cap`` that divides every value
    (sizes and the strides of non-unit axes), so rows start on AL-element boundaries."""
    g = 0
    for v in values:
        g = math.gcd(g, int(v))
    return cap if g == 0 else min(cap, g & -g)


def _stride_args(strides: tuple[int, ...], unit: int, al: int) -> list[int]:
    """Strides over AL as the kernels take them (the unit axis's entry is unused: 1)."""
    return [1 if axis == unit else s // al for axis, s in enumerate(strides)]


def _non_unit(strides: tuple[int, ...], unit: int) -> list[int]:
    return [s for axis, s in enumerate(strides) if axis != unit]


def _warps_for(elements: int) -> int:
    """Warps for the small kernels: about 16 float32 values per thread and tile."""
    return max(4, min(16, _p2(elements // 512)))


_PCSA_MIN_KEY_TILE = 16  # the smallest key block: bounds the key blocks per row at C / 16


def _max_key_blocks(c: int) -> int:
    """Key blocks per row that the forward workspace has room for: the most any tiling uses."""
    return -(-c // _PCSA_MIN_KEY_TILE)


def _pcsa_tiles(c: int, nb: int) -> tuple[int, int, int]:
    """(query block, key block, warps) of the forward channel attention, C channels and
    NB padded tokens. Long token rows (NB >= TUNE["pcsa_wide_tokens"], the 80 x 80 maps)
    with C >= TUNE["pcsa_wide_channels"] take 64 x 64 channel blocks and 8 warps: a
    quarter of the programs, about one wave at C = 128 (H100, graph replay at
    (128, 80, 80): 23 -> 11 us). Shorter rows or fewer channels keep small blocks: there
    the wide ones measured slower (21 -> 27 us at (512, 20, 20), 7 -> 10 us at (64, 80, 80))."""
    wide = TUNE["pcsa_wide_tokens"]
    if wide and nb >= wide and c >= TUNE["pcsa_wide_channels"]:
        return 64, 64, 8
    tcb = max(16, min(32, 2048 // nb, _p2(c)))
    cbk = max(_PCSA_MIN_KEY_TILE, min(_p2(c), _p2_floor(TUNE["pcsa_key_tile"] // nb), 4096 // tcb))
    return tcb, cbk, TUNE["pcsa_warps"]


class _Seg:
    """A float32 segment of workspace ``buf`` (index into the launch's workspaces),
    passed to kernels as a pointer."""

    __slots__ = ("off", "numel", "buf")

    def __init__(self, off: int, numel: int, buf: int = 0) -> None:
        self.off, self.numel, self.buf = off, numel, buf


def _layout(sizes: dict[str, int]) -> tuple[dict[str, _Seg], int]:
    """Consecutive segments, each 128-byte aligned (kernels assume aligned pointers);
    returns them and the total length (the last segment is not padded)."""
    segs, off, end = {}, 0, 0
    for name, n in sizes.items():
        segs[name] = _Seg(off, n)
        end = off + n
        off += -(-max(n, 1) // 32) * 32
    return segs, end


def _fwd_workspace(b, c: int, h, w, window: int) -> dict:
    """Segment sizes of the forward workspace (float32 elements), in layout order.

    Shared by :class:`_Plan` and the fake implementation of ``scsa_yolo::fused_forward``,
    which calls it with a symbolic batch, height and width under ``torch.compile`` (C is a
    constant: the parameters fix it). So the sizes are plain arithmetic in B, H and W: the
    key-block partials (qm, ql, qa) get room for the most key blocks any tiling uses
    (C / 16), not the plan's count, which depends on the token count's power of two.
    That keeps a compiled graph valid for every map size (the kernels take the sizes at
    run time, inside the operator), at 3 C^2 / 16 floats per sample: 49 KB at C = 256,
    0.8 MB at C = 1024."""
    hp, n = h // min(window, h), (h // min(window, h)) * (w // min(window, w))
    nkb = _max_key_blocks(c)
    bc = b * c
    # (B, 2) statistics last: when B * C is a multiple of 32 (every YOLO layer) the
    # layout then has no padding, which would be left unwritten (see _forward).
    return dict(xh=bc * h, xw=bc * w, ah=bc * h, aw=bc * w, pooled=bc * n, pstat=bc * hp * 2,
                qm=bc * nkb, ql=bc * nkb, qa=bc * nkb, gate=bc, o=bc, lse=bc, stats=b * 2)


class _Plan:
    """Geometry, tiles, grids and workspace layout for one (layer config, input) kind.

    Everything here is per input shape, but the kernels compiled for it are not: their
    compile-time constants (``split``'s dicts, ``k_*``) depend on the sizes only through
    bucketed tiles (powers of two of padded sides, the dense column runs, the row block)
    and the alignment AL, so most new map sizes reuse compiled kernels. The sizes and
    strides themselves are run-time arguments (``split_sizes``, ``bwd_for``)."""

    _uids = itertools.count()

    def __init__(self, cfg: _Config, x: torch.Tensor, pdtype: torch.dtype) -> None:
        b, c, h, w = x.shape
        self.uid = next(_Plan._uids)  # launch-cache key (an id() could be reused after eviction)
        self.B, self.C, self.H, self.W = b, c, h, w
        self.WH, self.WW = min(cfg.window, h), min(cfg.window, w)
        self.HP, self.WP = h // self.WH, w // self.WW
        self.N = self.HP * self.WP
        self.NG = len(cfg.kernel_sizes)
        self.Cg = c // self.NG
        self.alpha = c**-0.5 if cfg.scale_mode == "channels" else self.N**-0.5
        self.ks = list(cfg.kernel_sizes) + [1] * (_MAX_GROUPS - self.NG)
        self.pdtype = pdtype
        self.sx = tuple(x.stride())
        self.so = tuple(torch.empty_like(x, device="meta").stride())  # out and dx
        self.prec = "ieee" if _kernel_state.get("interpreted") else "tf32x3"
        # Alignment of rows (AL elements: at most 16 bytes of x) and unit-stride axes.
        self.xu, self.ou = _unit_axis(self.sx), _unit_axis(self.so)
        self.al_cap = max(1, 16 // x.element_size())
        self.al = al = _alignment(self.al_cap, h, w, *_non_unit(self.sx, self.xu), *_non_unit(self.so, self.ou))
        hq, wq = h // al, w // al
        sxa, soa = _stride_args(self.sx, self.xu, al), _stride_args(self.so, self.ou, al)
        self.inv_h, self.inv_w = 1.0 / h, 1.0 / w
        self.inv_n, self.inv_cn = 1.0 / self.N, 1.0 / (c * self.N)
        # The small kernels' float32 rows of H, W or N floats: their own alignment (16 bytes).
        self.gal, self.nal = _alignment(4, h, w), _alignment(4, self.N)
        gq = (h // self.gal, w // self.gal)
        nq = self.N // self.nal
        win = dict(WH=self.WH, WW=self.WW)
        # Streaming stages (see _scsa_kernels.forward). A and P: columns as a dense
        # power-of-two run plus a tail run; A's row blocks tile H exactly where they can.
        w0, w1 = _runs(w)
        bh = _row_block(h)
        # R: CBR whole planes per program, BHR rows per loop step, columns padded.
        bw = _p2(w)
        bhr = min(_p2(h), max(1, TUNE["plane_tile"] // bw))
        cbr = min(_p2(c), max(1, TUNE["plane_tile"] // (bhr * bw)))
        self.NR = -(-c // cbr)
        # A: one (CB, BH, W0 + W1) tile per program.
        cb = max(1, min(_p2(c), _p2_floor(TUNE["apply_tile"] // (bh * (w0 + w1)))))
        self.NRB = -(-h // bh)
        self.NA = -(-c // cb) * self.NRB
        # P: CBP channels x one window row; the WH rows as dense runs over the pooled columns.
        p0, p1 = _runs(self.WP * self.WW)
        cbp = max(1, min(_p2(c), _p2_floor(TUNE["pool_tile"] // (self.WH * (p0 + p1)))))
        while cbp > 8 and b * -(-c // cbp) * self.HP < TUNE["min_programs"]:
            cbp //= 2  # small maps: more, smaller programs rather than a fraction of the SMs busy
        self.NP = -(-c // cbp) * self.HP
        # G: one group and axis per program.
        cgb, lb = _p2(self.Cg), _p2(max(h, w))
        # Q: CBQ queries x CBK keys x all tokens per program (one step, no loop).
        nb = max(16, _p2(self.N))
        tcb, cbk, qwarps = _pcsa_tiles(c, nb)
        self.NQ = -(-c // tcb)
        self.NKB = -(-c // cbk)
        nkbp = max(2, _p2(self.NKB))
        # The five launches: (kernel name, grid, constexpr arguments) ...
        self.split = [
            ("fwd_reduce_kernel", (b * self.NR,),
             dict(C=c, XU=self.xu, AL=al, CBR=cbr, BHR=bhr, BW=bw, NR=self.NR, ONE=bhr >= _p2(h),
                  num_warps=TUNE["plane_warps"])),
            ("fwd_gate_kernel", (b * self.NG * 2,),
             dict(C=c, Cg=self.Cg, NG=self.NG, CGB=cgb, LB=lb, KMAX=max(cfg.kernel_sizes), GAL=self.gal,
                  num_warps=_warps_for(cgb * lb))),
            ("fwd_pool_kernel", (b * self.NP,),
             dict(C=c, XU=self.xu, AL=al, **win, CBP=cbp, P0=p0, P1=p1, REV=TUNE["pool_reverse"],
                  num_warps=TUNE["pool_warps"])),
            ("fwd_pcsa_kernel", (b * self.NQ * self.NKB,),
             dict(C=c, CBQ=tcb, CBK=cbk, NB=nb, CFB=_p2(c), NQ=self.NQ, NKB=self.NKB, PREC=self.prec,
                  NAL=self.nal, num_warps=qwarps)),
            ("fwd_apply_kernel", (b * self.NA,),
             dict(C=c, XU=self.xu, OU=self.ou, AL=al, CB=cb, BH=bh, W0=w0, W1=w1, NKB=self.NKB, NKBP=nkbp,
                  RES=0, num_warps=TUNE["apply_warps"])),
        ]
        # ... and their run-time size arguments (after the tensors and scalars of _split_args).
        self.split_sizes = [
            [hq, wq, *sxa, self.inv_h, self.inv_w],
            [*gq],
            [hq, wq, *sxa, self.HP, self.WP, self.NP],
            [nq, self.HP, self.inv_n, self.inv_cn],
            [hq, wq, *sxa, *soa, self.NRB, self.NA],
        ]
        # Small maps (H * W <= TUNE["small_map_max"]): two launches instead of five. There
        # the five cost their fixed latency (each waits for the one before), not bandwidth:
        # 34 us against a 6.3 us floor at (32, 256, 20, 20) on an H200.
        # S1 runs one program per (sample, group): at batch 1 that is NG programs, so
        # batches below TUNE["small_min_programs"] programs take the five launches.
        self.small = (h * w <= TUNE["small_map_max"] and b * self.NG >= TUNE["small_min_programs"]
                      and c <= TUNE["small_max_channels"])
        if self.small:
            self.split, self.split_sizes = self._small_launches(cfg, b, c, h, w, al, (hq, wq), sxa, soa,
                                                                (w0, w1), nb, nq, cgb, lb)
        # The same launches (five or two) with the residual forms of the output writer
        # (BLEND_MODES: A's or S2's RES), made on first use.
        self._blended: dict[int, list] = {0: self.split}
        self.g_gate = (b * self.NG * 2,)  # the backward's gate kernel has the forward's grid
        # Backward tiles (unchanged since v2: rows padded to powers of two).
        rb = _p2(self.WH)
        cbr = min(_p2(c), max(1, TUNE["bred_tile"] // (rb * bw)))
        self.ncb_bred = -(-c // cbr)
        self.g_bred = (b * self.ncb_bred,)
        self.k_bred = dict(C=c, **win, CB=cbr, RB=rb, BW=bw, num_warps=TUNE["bred_warps"])
        bhd = min(_p2(h), max(1, TUNE["dx_tile"] // bw))
        cbd = min(_p2(c), max(1, TUNE["dx_tile"] // (bhd * bw)))
        self.ncb_dx = -(-c // cbd)
        self.g_dx = (b * self.ncb_dx,)
        self.dx_tiles = dict(**win, CB=cbd, BH=bhd, BW=bw, ONE=bhd >= _p2(h), num_warps=TUNE["dx_warps"])
        self._bwd_by_dout: dict[tuple, dict] = {}
        bcb = max(16, min(32, 2048 // nb, _p2(c)))
        self.ncb_btok = -(-c // bcb)
        self.g_bpcsa = (b * self.ncb_btok,)
        self.nslot = _SLOT_CONV_W + max(cfg.kernel_sizes)
        self.k_bpcsa = dict(C=c, NSLOT=self.nslot, CB=bcb, NB=nb, PREC=self.prec, NAL=self.nal,
                            num_warps=max(8, _warps_for(bcb * nb)))
        self.k_bgate = dict(C=c, Cg=self.Cg, **win, NSLOT=self.nslot, NG=self.NG, CGB=cgb, LB=lb,
                            CFB=_p2(c), NBP=_p2(self.N), KMAX=max(cfg.kernel_sizes), GAL=self.gal, NAL=self.nal,
                            num_warps=max(8, _warps_for(cgb * lb)))
        self.bpcsa_sizes = [nq, self.inv_n]
        self.bgate_sizes = [*gq, nq, self.HP, self.WP, self.inv_h, self.inv_w, self.inv_cn]
        # Parameter gradients: flat buffer in parameter-list order.
        wsz = [self.Cg * k for k in cfg.kernel_sizes] + [0] * (_MAX_GROUPS - self.NG)
        self.param_numel = sum(wsz) + 10 * c
        # Sum over the 2B sample planes: one tile of rows per program, many programs (a
        # tiny reduction; its cost is latency, so spread it).
        sb = _p2(self.nslot)
        rblk = min(64, _p2(2 * b))
        cblk = max(1, min(_p2(c), 4096 // (rblk * sb)))
        self.k_param = dict(C=c, Cg=self.Cg, NSLOT=self.nslot, OFF_W1=wsz[0], OFF_W2=wsz[0] + wsz[1],
                            OFF_W3=wsz[0] + wsz[1] + wsz[2], OFF_B=sum(wsz), CBLK=cblk, SB=sb, RBLK=rblk,
                            num_warps=4)
        self.g_param = (-(-c // cblk),)
        # Workspaces (float32).
        bc = b * c
        sizes = _fwd_workspace(b, c, h, w, cfg.window)
        self.fws, self.fws_numel = _layout(sizes)
        # Floats no kernel writes: padding between segments, and the key-block partials'
        # room beyond this plan's NKB blocks (see _fwd_workspace).
        # (The small path stores its merged partials as one block's.)
        written = sum(sizes.values()) - 3 * bc * (_max_key_blocks(c) - (1 if self.small else self.NKB))
        self.fws_gaps = self.fws_numel != written
        self.bws, self.bws_numel = _layout(dict(
            dgate=bc, gh=bc * h, gw=bc * w, rp=bc * h * self.WP, cq=bc * self.HP * w, dyhat=bc * self.N,
            s12=b * 2 * c, part=b * 2 * c * self.nslot, dps=bc * self.N, dxh=bc * h, dxw=bc * w,
            scr_h=bc * h, scr_w=bc * w))
        self.fws_in_bwd = {name: _Seg(seg.off, seg.numel, 1) for name, seg in self.fws.items()}
        # The parameter gradients as (shape, contiguous strides, offset) into the flat buffer.
        self.grad_views, off = [], 0
        for shape in _param_shapes(cfg):
            self.grad_views.append((shape, torch.empty(shape, device="meta").stride(), off))
            off += math.prod(shape)

    def _small_launches(self, cfg: _Config, b: int, c: int, h: int, w: int, al: int, hwq: tuple[int, int],
                        sxa: list[int], soa: list[int], runs: tuple[int, int], nb: int, nq: int, cgb: int,
                        lb: int) -> tuple[list, list]:
        """(launches, size arguments) of the small-map path: S1 per (sample, group), S2 per
        (sample, query block); see ``fwd_small_gates_kernel`` / ``fwd_small_out_kernel``.
        It leaves the forward workspace as the five launches do (X_H, X_W, the gates, the
        pooled tokens, the statistics, o, lse), so the backward is the same."""
        tile = TUNE["small_tile"]
        # S1: R and P chunks of whole channels that divide the group (power-of-two
        # divisors of Cg), so a program never reaches into the next group's channels.
        div = self.Cg & -self.Cg
        bw = _p2(w)
        bhr = min(_p2(h), max(1, tile // bw))
        cbr = max(1, min(div, _p2_floor(tile // (bhr * bw))))
        p0, p1 = _runs(self.WP * self.WW)
        cbp = max(1, min(div, _p2_floor(tile // (self.WH * (p0 + p1)))))
        # S2: CBQ query channels, every key block in turn, then out in rows of BH.
        cbq = max(16, min(TUNE["small_queries"], _p2(c)))
        cbk = max(_PCSA_MIN_KEY_TILE, min(_p2(c), _p2_floor(TUNE["pcsa_key_tile"] // nb)))
        nkb = -(-c // cbk)
        nq2 = -(-c // cbq)
        w0, w1 = runs
        bh = max(1, min(_p2(h), _p2_floor(max(1, TUNE["small_out_tile"] // (cbq * (w0 + w1))))))
        nrb = -(-h // bh)
        launches = [
            ("fwd_small_gates_kernel", (b * self.NG,),
             dict(C=c, Cg=self.Cg, NG=self.NG, XU=self.xu, AL=al, CBR=cbr, BHR=bhr, BW=bw, ONE=bhr >= _p2(h),
                  CGB=cgb, LB=lb, KMAX=max(cfg.kernel_sizes), WH=self.WH, WW=self.WW, CBP=cbp, P0=p0, P1=p1,
                  num_warps=TUNE["small_warps"])),
            ("fwd_small_out_kernel", (b * nq2,),
             dict(C=c, XU=self.xu, OU=self.ou, AL=al, NAL=self.nal, CBQ=cbq, CBK=cbk, NB=nb, CFB=_p2(c), NQ=nq2,
                  NKB=nkb, PREC=self.prec, BH=bh, W0=w0, W1=w1, ONE=nrb == 1, RES=0,
                  num_warps=TUNE["small_out_warps"])),
        ]
        sizes = [
            [*hwq, *sxa, self.HP, self.WP, self.inv_h, self.inv_w],
            [*hwq, *sxa, *soa, nq, self.HP, nrb, self.inv_n, self.inv_cn],
        ]
        return launches, sizes

    def split_for(self, res: int) -> list:
        """The plan's forward launches (the five, or the small path's S1 and S2) with the
        output writer (A or S2, always the last) storing the form RES of
        ``_scsa_kernels.forward.blend`` (0: SCSA(x) itself)."""
        launches = self._blended.get(res)
        if launches is None:
            name, grid, consts = self.split[-1]
            launches = self._blended[res] = self.split[:-1] + [(name, grid, dict(consts, RES=res))]
        return launches

    def bwd_for(self, sd: tuple[int, ...]) -> dict:
        """Constants and size arguments of the two backward passes over dout (strides sd):
        the reduction of x and dout, and the dx pass (dx has out's strides)."""
        entry = self._bwd_by_dout.get(sd)
        if entry is None:
            du = _unit_axis(sd)
            al = _alignment(self.al_cap, self.H, self.W, *_non_unit(self.sx, self.xu), *_non_unit(sd, du),
                            *_non_unit(self.so, self.ou))
            hq, wq = self.H // al, self.W // al
            sda = _stride_args(sd, du, al)
            entry = self._bwd_by_dout[sd] = dict(
                k_bred=dict(self.k_bred, XU=self.xu, DU=du, AL=al),
                bred_sizes=[hq, wq, *_stride_args(self.sx, self.xu, al), *sda, self.HP, self.WP,
                            -(-self.H // self.WH)],
                k_dx=dict(C=self.C, DU=du, XU=self.ou, AL=al, **self.dx_tiles),
                dx_sizes=[hq, wq, *sda, *_stride_args(self.so, self.ou, al), self.HP, self.WP])
        return entry


_SLOT_CONV_W = 10  # must match backward.SLOTS["conv_w"] (checked when the kernels load)
_plans: dict[tuple, _Plan] = {}


def _plan_key(cfg: _Config, x: torch.Tensor, pdtype: torch.dtype) -> tuple:
    return (cfg, tuple(x.shape), x.stride(), x.dtype, pdtype, x.device.index)


def _plan_for(cfg: _Config, x: torch.Tensor, pdtype: torch.dtype) -> _Plan:
    key = _plan_key(cfg, x, pdtype)
    plan = _plans.get(key)
    if plan is None:
        plan = _store_plan(key, _Plan(cfg, x, pdtype))
    return plan


def _store_plan(key: tuple, plan: _Plan) -> _Plan:
    """Keep at most MAX_SHAPES plans (and their direct launches): the oldest go first. A
    plan is a few microseconds of Python to rebuild and compiles nothing new."""
    while _plans and len(_plans) >= MAX_SHAPES:
        _launch.forget(_plans.pop(next(iter(_plans))).uid)
    _plans[key] = plan
    return plan


class _Launcher:
    """Launch a ``triton.jit`` kernel; after the first launch of a given kernel and key,
    call the compiled kernel directly, skipping the JIT's per-call argument binding and
    specialisation (tens of microseconds of host time per launch).

    The key must fix every specialisation input: the caller keys on the plan (its ``uid``
    second in the key: shapes, strides, dtypes) and on the 16-byte alignment of each
    external tensor; workspace segments are always 128-byte aligned. If the direct call
    ever fails (a Triton version whose launcher takes other arguments), the JIT path is
    used from then on.

    It also counts the kernel variants Triton compiles (``variants``: one entry per kernel
    and specialisation, what Triton keys its compile cache on) and the host seconds of the
    first launch of each (``first_launch_s``: the compile, or the load from Triton's disk
    cache), in the interpreter too, where nothing is compiled.
    """

    direct_ok = True
    direct_error = ""

    def __init__(self) -> None:
        self.cache: dict[tuple, tuple] = {}
        self.variants: dict[tuple, float] = {}
        self.grouped: set[tuple] = set()  # launch groups already offered to precompile()
        self.group_compiles = 0  # groups whose kernels were compiled side by side
        self.group_error = ""
        self._pool = None
        # compile_ahead: variant -> the Future of its queued compile (None: predicted only,
        # in the interpreter); which launched variants had been queued; the seconds launches
        # waited for queued compiles to finish; why queuing stopped, if it did
        self.ahead: dict[tuple, object] = {}
        self.ahead_used: set[tuple] = set()
        self.ahead_wait_s = 0.0
        self.ahead_taken_back = 0  # queued variants a launch compiled itself (no thread had started them)
        self.ahead_error = ""
        self.ahead_threads = COMPILE_THREADS
        self.ahead_from = 0  # how many variants had launched when the first was queued
        self.ahead_plan_s = 0.0  # host seconds the planning passes took (scsa_warmup.compile_ahead)
        self._ahead_pool = None

    def precompile(self, launches: list[tuple]) -> None:
        """Compile the kernel variants of ``launches`` (``(fn, key, grid, args, wss, consts)``
        each, as :meth:`__call__` takes them) that this process has not launched yet, side by
        side in COMPILE_THREADS threads, before the first of them launches. Compiling is host
        work, most of it outside the GIL (MLIR passes, LLVM, ptxas), so a new input kind waits
        for its slowest kernel rather than all of them in turn. Each compiled variant lands in
        Triton's in-memory and disk caches, where its first launch finds it. Only the first
        call of a group looks (the group is keyed by its first launch's key); nothing happens
        in the interpreter, with fewer than two new variants, or on a Triton without
        AsyncCompileMode, and a failure leaves the compiles to the launches themselves."""
        first = launches[0][1]
        if first in self.grouped:
            return
        self.grouped.add(first)
        if COMPILE_THREADS < 2 or _kernel_state.get("interpreted"):
            return
        if self.group_error:
            return
        try:
            from triton import AsyncCompileMode  # noqa: PLC0415 (Triton 3.4 and later)
        except ImportError:
            return
        todo: dict[tuple, tuple] = {}
        for fn, _key, grid, args, wss, consts in launches:
            views = _views(args, wss)
            variant = _variant_key(fn, views, consts)
            if variant not in self.variants and variant not in self.ahead:
                todo.setdefault(variant, (fn, grid, views, consts))
        if len(todo) < 2:
            return
        if self._pool is None:
            from concurrent.futures import ThreadPoolExecutor  # noqa: PLC0415

            self._pool = ThreadPoolExecutor(COMPILE_THREADS, thread_name_prefix="scsa-compile")
        start = time.perf_counter()
        try:
            with AsyncCompileMode(self._pool):
                for fn, grid, views, consts in todo.values():
                    fn.warmup(*views, grid=grid, **consts)
        except Exception as exc:  # noqa: BLE001 (the launch compiles it again and reports)
            self.group_error = f"{type(exc).__name__}: {exc}"
            return
        share = (time.perf_counter() - start) / len(todo)  # the group's wait, spread over its variants
        for variant in todo:
            self.variants[variant] = share
        self.group_compiles += 1

    def queue_ahead(self, launches: list[tuple], device: torch.device) -> None:
        """Queue the compiles of the variants of ``launches`` (as :meth:`precompile` takes
        them) that are neither launched nor queued yet, for ``device`` (the input's: a meta
        plan's arguments have none), on ``ahead_threads`` background threads, and return at
        once. Each compile lands in Triton's in-memory and disk
        caches; a launch of a queued variant first waits for its compile (:meth:`__call__`),
        so nothing is compiled twice. In the interpreter (nothing to compile) or with fewer
        than one thread the variants are only recorded, which is what the tests check: the
        prediction. A failure to queue stops queuing (``ahead_error``); the launches then
        compile as they would have without it."""
        if not self.ahead:
            self.ahead_from = len(self.variants)
        for fn, _key, grid, args, wss, consts in launches:
            views = _views(args, wss)
            variant = _variant_key(fn, views, consts)
            if variant in self.variants or variant in self.ahead:
                continue
            future = None
            if self.ahead_threads >= 1 and not _kernel_state.get("interpreted") and not self.ahead_error:
                try:
                    if self._ahead_pool is None:
                        from concurrent.futures import ThreadPoolExecutor  # noqa: PLC0415

                        self._ahead_pool = ThreadPoolExecutor(self.ahead_threads, thread_name_prefix="scsa-ahead")
                    future = self._ahead_pool.submit(_compile_variant, fn, grid, views, consts, device)
                except Exception as exc:  # noqa: BLE001 (e.g. the interpreter shutting down)
                    self.ahead_error = f"{type(exc).__name__}: {exc}"
            self.ahead[variant] = future

    def _wait_ahead(self, variant: tuple) -> None:
        """Before the first launch of a queued variant: wait for its compile, or, when no
        thread has started it yet, take it off the queue and let the launch compile it now
        rather than wait for the compiles queued before it. A compile that failed is left to
        the launch, which compiles again and raises what Triton raises."""
        self.ahead_used.add(variant)
        future = self.ahead.get(variant)
        if future is None:
            return
        if future.cancel():
            self.ahead_taken_back += 1
            return
        start = time.perf_counter()
        try:
            future.result()
        except Exception as exc:  # noqa: BLE001 (reported by the launch's own compile)
            self.ahead_error = self.ahead_error or f"{type(exc).__name__}: {exc}"
        self.ahead_wait_s += time.perf_counter() - start

    def forget(self, uid: int) -> None:
        """Drop the direct launches of an evicted plan."""
        for key in [k for k in self.cache if len(k) > 1 and k[1] == uid]:
            del self.cache[key]
        self.grouped = {k for k in self.grouped if k[1] != uid}

    def first_launch_s(self) -> float:
        return sum(self.variants.values())

    def __call__(self, fn, key: tuple, grid: tuple, args: list, wss: tuple, consts: dict, stream=None) -> None:
        """``stream``: the raw CUDA stream (see :func:`_current_stream`); None lets Triton
        look it up, a few microseconds of host time per launch."""
        entry = self.cache.get(key) if _Launcher.direct_ok else None
        if entry is not None:
            runner, cvals, slots = entry
            bases = [t.data_ptr() for t in wss]
            # Pointers as ints: Triton's launcher validates every tensor argument with a
            # driver call (cuPointerGetAttribute), a microsecond or more each; supports()
            # has already checked that every tensor lives on the input's device.
            if slots:  # which arguments are segments and tensors, found at the first launch
                flat = list(args)
                seg_slots, tensor_slots = slots
                for i, buf, offset in seg_slots:
                    flat[i] = bases[buf] + offset
                for i in tensor_slots:
                    flat[i] = flat[i].data_ptr()
                runner(*flat, *cvals, stream=stream)
                return
            flat = _pointers(args, bases)
            try:  # first direct launch of this kernel variant: fall back for good if refused
                runner(*flat, *cvals, stream=stream)
                self.cache[key] = (runner, cvals, _arg_slots(args))
                return
            except Exception as exc:  # noqa: BLE001 (any launcher incompatibility)
                _Launcher.direct_ok = False
                _Launcher.direct_error = f"{type(exc).__name__}: {exc}"
        views = _views(args, wss)
        variant = _variant_key(fn, views, consts)
        if variant not in self.variants:
            start = time.perf_counter()
            if variant in self.ahead:
                self._wait_ahead(variant)
            compiled = fn[grid](*views, **consts)
            self.variants[variant] = time.perf_counter() - start
        else:
            compiled = fn[grid](*views, **consts)
        if _Launcher.direct_ok and compiled is not None and not _kernel_state.get("interpreted"):
            names = list(fn.arg_names)
            cvals = [consts[n] for n in names[len(args):]]
            grid3 = tuple(grid) + (1,) * (3 - len(grid))  # the compiled runner indexes all three
            self.cache[key] = (compiled[grid3], cvals, False)


_launch = _Launcher()


def _compile_variant(fn, grid: tuple, views: list, consts: dict, device: torch.device) -> None:
    """Compile one kernel variant without launching it (a background thread of
    :meth:`_Launcher.queue_ahead`); Triton compiles for the thread's current device."""
    if device.type == "cuda":
        torch.cuda.set_device(device)
    fn.warmup(*views, grid=grid, **consts)


_ahead_state: dict = {"on": False, "batch": None}


@contextlib.contextmanager
def compile_ahead(batch: int | None = None):
    """Inside this block, fused SCSA calls (forward and backward) plan their launches and
    queue the compiles of the kernel variants they need (:meth:`_Launcher.queue_ahead`)
    instead of launching: their outputs and gradients are left uninitialised. Run a model
    through the input kinds a job will meet inside it (``scsa_warmup.compile_ahead``), and
    the job's first batches wait only for the kernels they launch, compiled side by side
    in the background meanwhile. ``batch``: plan every call for that many images whatever
    its input holds (a variant depends on the batch only through a few tiles), so the model
    can run a single image per kind, which costs next to nothing. Not for use under
    torch.compile."""
    previous = dict(_ahead_state)
    _ahead_state.update(on=True, batch=batch)
    try:
        yield
    finally:
        _ahead_state.update(previous)


def _ahead_input(t: torch.Tensor) -> torch.Tensor:
    """A (B, C, H, W) input as :func:`compile_ahead` plans it: ``batch`` images (meta: only
    its sizes, strides and dtype are read; its address counts as aligned, as the caching
    allocator's are), the per-image strides of ``t``; ``t`` itself without a batch."""
    batch = _ahead_state["batch"]
    if batch is None:
        return t
    _, c, h, w = t.shape
    return torch.empty_strided((batch, c, h, w), (c * h * w, *t.stride()[1:]), dtype=t.dtype, device="meta")


def _views(args: list, wss: tuple) -> list:
    """A launch's arguments as the JIT takes them: each workspace segment as a tensor view."""
    return [wss[a.buf].narrow(0, a.off, max(a.numel, 1)) if type(a) is _Seg else a for a in args]


def _pointers(args: list, bases: list[int]) -> list:
    """A launch's arguments as the compiled kernel takes them: a workspace segment as its
    base pointer plus byte offset, a tensor as its pointer, anything else as it is."""
    return [bases[a.buf] + 4 * a.off if type(a) is _Seg else a.data_ptr() if isinstance(a, torch.Tensor) else a
            for a in args]


def _arg_slots(args: list) -> tuple[tuple[tuple[int, int, int], ...], tuple[int, ...]]:
    """Where a launch's workspace segments ((position, workspace, byte offset)) and tensors
    (positions) are. Fixed by the launch key: the same kernel and plan (whose segments
    these are) always get the same argument list shape, only the tensors and workspace
    bases change from call to call, so :meth:`_Launcher.__call__` fills just those
    positions instead of testing the type of every argument on every call."""
    segs = tuple((i, a.buf, 4 * a.off) for i, a in enumerate(args) if type(a) is _Seg)
    tensors = tuple(i for i, a in enumerate(args) if isinstance(a, torch.Tensor))
    return segs, tensors


def _variant_key(fn, args: list, consts: dict) -> tuple:
    """What Triton keys a compiled kernel on: the kernel, its constants, and per run-time
    argument the dtype and 16-byte alignment of a tensor, the type of a float, and for an
    integer outside the size arguments the value classes Triton specialises (1, multiple
    of 16)."""
    sizes = _kernels().fwd.SIZE_ARGS
    spec = []
    for name, a in zip(fn.arg_names, args):
        if isinstance(a, torch.Tensor):
            spec.append((str(a.dtype), a.data_ptr() % 16 == 0))
        elif isinstance(a, bool) or not isinstance(a, int):
            spec.append(type(a).__name__)
        else:
            spec.append("int" if name in sizes else ("int", a == 1, a % 16 == 0))
    return (fn.fn.__name__, tuple(spec), tuple(sorted(consts.items())))


def kernel_stats(slowest: int = 0) -> dict:
    """Compiled-kernel bookkeeping of this process: ``variants`` (distinct kernel
    variants launched, i.e. Triton compiles on a cold cache), ``first_launch_s`` (host
    seconds of their first launches: compiling, or loading from Triton's cache),
    ``plans`` (input kinds planned, at most MAX_SHAPES kept), ``group_compiles`` (launch
    groups whose new variants compiled side by side; their wait is spread over their
    variants in ``first_launch_s``) and ``group_error`` (why side-by-side compiling stopped,
    if it did: the launches then compile one by one) and ``ahead`` (:func:`ahead_stats`).

    ``slowest``: also list that many variants with the longest first launch, slowest first,
    each ``[seconds, kernel, constants, argument kinds]`` (what Triton keys the variant on,
    :func:`_variant_key`): after a warm-up, the ones that still compiled."""
    stats = {"variants": len(_launch.variants), "first_launch_s": _launch.first_launch_s(), "plans": len(_plans),
             "group_compiles": _launch.group_compiles, "group_error": _launch.group_error,
             "ahead": ahead_stats()}
    if slowest:
        ranked = sorted(_launch.variants.items(), key=lambda item: -item[1])[:slowest]
        stats["slowest"] = [[round(seconds, 3), name, dict(consts), [str(kind) for kind in spec]]
                            for (name, spec, consts), seconds in ranked]
    return stats


def ahead_stats() -> dict:
    """What :func:`compile_ahead` did in this process: ``queued`` (variants predicted and,
    on a GPU, compiled in the background), ``used`` (launched variants that had been
    queued), ``unpredicted`` (variants launched since the first queuing that had not been
    queued: each compiled at its launch, as without compile-ahead), ``taken_back`` (queued
    variants whose launch came before any thread had started them, so compiled there),
    ``wait_s`` (seconds launches waited for queued compiles), ``plan_s`` (host seconds the
    planning passes took: what compiling ahead costs a job whose kernels are all cached),
    ``threads`` and ``error``."""
    ahead = _launch.ahead
    later = list(_launch.variants)[_launch.ahead_from:] if ahead else []
    unpredicted = sum(1 for v in later if v not in ahead)
    compiles = not _kernel_state.get("interpreted")
    return {"queued": len(ahead), "used": len(_launch.ahead_used), "unpredicted": unpredicted,
            "taken_back": _launch.ahead_taken_back, "wait_s": round(_launch.ahead_wait_s, 3),
            "plan_s": round(_launch.ahead_plan_s, 3), "threads": _launch.ahead_threads if compiles else 0,
            "error": _launch.ahead_error}


# Triton's own lookup of the current stream (its CUDA driver calls the same function).
_raw_stream = getattr(torch._C, "_cuda_getCurrentRawStream", None)


def _current_stream(x: torch.Tensor):
    """The current raw CUDA stream of x's device, looked up once per forward or backward
    instead of once per launch; None (Triton looks it up) off CUDA or without the hook."""
    if _raw_stream is None or x.device.type != "cuda":
        return None
    return _raw_stream(x.device.index)


def _aligned(*tensors: torch.Tensor) -> tuple[bool, ...]:
    return tuple(t.data_ptr() % 16 == 0 for t in tensors)


class _Params:
    """Named view of the flat parameter list of :func:`_params`.

    The autograd Function keeps the forward's instance for its backward, so the names and
    the alignment key are worked out once per forward + backward, not twice."""

    __slots__ = ("all", "conv_w", "conv_b", "gam_h", "bet_h", "gam_w", "bet_w", "gam_p", "bet_p", "wq", "wk", "wv",
                 "_key")

    def __init__(self, params: tuple[torch.Tensor, ...], groups: int) -> None:
        self.all = params
        self.conv_w = list(params[:groups]) + [params[0]] * (_MAX_GROUPS - groups)
        self.conv_b = list(params[groups:2 * groups]) + [params[groups]] * (_MAX_GROUPS - groups)
        (self.gam_h, self.bet_h, self.gam_w, self.bet_w, self.gam_p, self.bet_p, self.wq, self.wk, self.wv) = params[
            2 * groups:]
        self._key = None

    def key(self) -> tuple | bool:
        """The parameters' part of a launch key: True when every parameter is 16-byte
        aligned (PyTorch's allocations always are), else the per-parameter tuple."""
        if self._key is None:
            self._key = True if not any(t.data_ptr() & 15 for t in self.all) else _aligned(*self.all)
        return self._key


# ----------------------------------------------------------------------------- forward


def _forward(cfg: _Config, x: torch.Tensor, prm: _Params, p: _Plan | None = None, clean: bool = False,
             g: torch.Tensor | None = None, res: int = 0):
    """Run the forward launches (five, or two on small maps); returns (out, plan, workspace). ``clean``: the
    workspace leaves this module (an output of scsa_yolo::fused_forward), so the floats no
    kernel writes are zeroed rather than left as stale bytes; the autograd Function keeps
    its workspace to itself and skips that fill. ``res`` (with ``g``, (C,)): out is the
    residual form of BLEND_MODES instead of SCSA(x) (inference only: no backward reads it)."""
    k = _kernels()
    if _ahead_state["on"]:
        return _queue_forward(cfg, x, prm, g, res)
    if p is None:
        p = _plan_for(cfg, x, prm.wq.dtype)
    fill = clean and p.fws_gaps
    ws = (torch.zeros if fill else torch.empty)(p.fws_numel, device=x.device, dtype=torch.float32)
    out = torch.empty_like(x)
    key = (p.uid, _aligned(x, out), prm.key())
    if res:
        key += (res, str(g.dtype), g.data_ptr() % 16 == 0)
    launches = p.split_for(res)
    stream = _current_stream(x)
    split_args = _split_args(cfg, x, out, prm, p, g)
    if (launches[0][0],) + key not in _launch.grouped:  # a new input kind: its kernels may need compiling
        _launch.precompile([(getattr(k.fwd, name), (name,) + key, grid, args, (ws,), consts)
                            for (name, grid, consts), args in zip(launches, split_args)])
    for (name, grid, consts), args in zip(launches, split_args):
        _launch(getattr(k.fwd, name), (name,) + key, grid, args, (ws,), consts, stream)
    return out, p, ws


def _queue_forward(cfg: _Config, x: torch.Tensor, prm: _Params, g: torch.Tensor | None, res: int):
    """:func:`_forward` inside :func:`compile_ahead`: queue the launches' variants, launch
    nothing; returns an uninitialised output shaped as x, the plan and its workspace."""
    k = _kernels()
    xp = _ahead_input(x)
    p = _Plan(cfg, xp, prm.wq.dtype)  # not kept: the job plans its own inputs
    ws = torch.empty(p.fws_numel, device=xp.device, dtype=torch.float32)
    split_args = _split_args(cfg, xp, torch.empty_like(xp), prm, p, g)
    _launch.queue_ahead([(getattr(k.fwd, name), (name,), grid, args, (ws,), consts)
                         for (name, grid, consts), args in zip(p.split_for(res), split_args)], x.device)
    return torch.empty_like(x), p, ws


def _split_args(cfg: _Config, x: torch.Tensor, out: torch.Tensor, prm: _Params, p: _Plan,
                g: torch.Tensor | None = None) -> list[list]:
    """Run-time arguments of the five launches (R, G, P, Q, A), or of the small-map path's
    two (S1, S2), sizes last. The output writer's (A's or S2's) ``g_ptr`` is x when there is
    no residual gate (never read: its type only keeps that variant stable)."""
    f, sz = p.fws, p.split_sizes
    if p.small:
        return [
            [x, f["xh"], f["xw"], f["ah"], f["aw"], f["pooled"], f["pstat"], *prm.conv_w, *prm.conv_b, *p.ks,
             prm.gam_h, prm.bet_h, prm.gam_w, prm.bet_w, cfg.eps_h, cfg.eps_w, *sz[0]],
            [x, f["ah"], f["aw"], f["pooled"], f["pstat"], prm.gam_p, prm.bet_p, prm.wq, prm.wk, prm.wv, f["qm"],
             f["ql"], f["qa"], f["gate"], f["o"], f["lse"], f["stats"], out, x if g is None else g, cfg.eps_p,
             p.alpha, *sz[1]],
        ]
    return [
        [x, f["xh"], f["xw"], *sz[0]],
        [f["xh"], f["xw"], f["ah"], f["aw"], *prm.conv_w, *prm.conv_b, *p.ks, prm.gam_h, prm.bet_h, prm.gam_w,
         prm.bet_w, cfg.eps_h, cfg.eps_w, *sz[1]],
        [x, f["ah"], f["aw"], f["pooled"], f["pstat"], *sz[2]],
        [f["pooled"], f["pstat"], prm.gam_p, prm.bet_p, prm.wq, prm.wk, prm.wv, f["qm"], f["ql"], f["qa"],
         f["stats"], cfg.eps_p, p.alpha, *sz[3]],
        [x, f["ah"], f["aw"], f["qm"], f["ql"], f["qa"], f["gate"], f["o"], f["lse"], out, x if g is None else g,
         *sz[4]],
    ]


# ----------------------------------------------------------------------------- backward


def _backward(cfg: _Config, x: torch.Tensor, dout: torch.Tensor, prm: _Params, p: _Plan, fws: torch.Tensor,
              need_dx: bool):
    """Run the backward launches; returns (dx or None, flat parameter gradients)."""
    k = _kernels()
    g = p.bws
    if _ahead_state["on"]:  # plan for the job's batch (p already is), queue, launch nothing
        image = (x, dout)
        x, dout, fws = _ahead_input(x), _ahead_input(dout), torch.empty(p.fws_numel, device="meta")
    ws = torch.empty(p.bws_numel, device=x.device, dtype=torch.float32)
    fw = p.fws_in_bwd  # forward workspace segments, as the second workspace
    sd = tuple(dout.stride())
    key = (p.uid, sd, _aligned(x, dout), prm.key())
    bd = p.bwd_for(sd)
    stream = _current_stream(x)
    wss = (ws, fws)
    launches = [
        (k.bwd.bwd_reduce_kernel, ("R",) + key, p.g_bred,
         [x, dout, fw["ah"], fw["aw"], fw["gate"], g["dgate"], g["gh"], g["gw"], g["rp"], g["cq"], p.ncb_bred,
          *bd["bred_sizes"]], wss, bd["k_bred"]),
        (k.bwd.bwd_pcsa_kernel, ("A",) + key, p.g_bpcsa,
         [fw["pooled"], fw["stats"], prm.gam_p, prm.bet_p, prm.wq, prm.wk, prm.wv, fw["gate"], fw["o"], fw["lse"],
          g["dgate"], g["dyhat"], g["s12"], g["part"], p.alpha, p.ncb_btok, *p.bpcsa_sizes], wss, p.k_bpcsa),
        (k.bwd.bwd_gate_kernel, ("G",) + key, p.g_gate,
         [fw["xh"], fw["xw"], g["gh"], g["gw"], g["rp"], g["cq"], fw["pooled"], fw["stats"], g["dyhat"], g["s12"],
          g["dps"], g["dxh"], g["dxw"], g["scr_h"], g["scr_w"], g["part"], *prm.conv_w, *prm.conv_b, *p.ks,
          prm.gam_h, prm.bet_h, prm.gam_w, prm.bet_w, cfg.eps_h, cfg.eps_w, *p.bgate_sizes], wss, p.k_bgate),
    ]
    dx = None
    if need_dx:
        dx = torch.empty_like(x)  # out's strides: the plan's so
        launches.append((k.bwd.bwd_dx_kernel, ("X",) + key + (_aligned(dx),), p.g_dx,
                         [dout, fw["ah"], fw["aw"], fw["gate"], g["dps"], g["dxh"], g["dxw"], dx, p.ncb_dx,
                          *bd["dx_sizes"]], wss, bd["k_dx"]))
    flat = torch.empty(p.param_numel, device=x.device, dtype=p.pdtype)
    launches.append((k.bwd.bwd_param_kernel, ("P",) + key + _aligned(flat), p.g_param,
                     [g["part"], flat, 2 * p.B, *p.ks], wss, p.k_param))
    if _ahead_state["on"]:
        _launch.queue_ahead(launches, image[0].device)
        return (torch.empty_like(image[0]) if need_dx else None), torch.empty(
            p.param_numel, device=image[0].device, dtype=p.pdtype)
    _launch.precompile(launches)
    for fn, lkey, grid, args, group_wss, consts in launches:
        _launch(fn, lkey, grid, args, group_wss, consts, stream)
    return dx, flat


def _param_grads(flat: torch.Tensor, plan: _Plan) -> list[torch.Tensor]:
    """Views of the flat gradient buffer shaped like the parameters (contiguous, in the order
    of :func:`_params`), one ``as_strided`` each: 17 views where ``unflatten_dense_tensors``
    made 34 (a narrow and a view per parameter; 15 against 19 us on the development CPU). The
    flat buffer holds exactly the parameters' elements, in their order. Eager only: the
    offsets are integers, which symbolic shapes (the operators' backward under torch.compile's
    tracing) refuse, so :func:`_op_grad` splits in Python."""
    view = flat.as_strided
    return [view(shape, stride, offset) for shape, stride, offset in plan.grad_views]


class _FusedSCSA(torch.autograd.Function):
    """x, then the flat parameter list of :func:`_params` -> SCSA(x)."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, cfg: _Config, *params: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        prm = _Params(params, len(cfg.kernel_sizes))
        out, plan, ws = _forward(cfg, x, prm)
        ctx.cfg, ctx.plan, ctx.prm = cfg, plan, prm
        ctx.save_for_backward(x, ws, *params)
        return out

    @staticmethod
    def backward(ctx, dout: torch.Tensor):  # type: ignore[override]
        # The engine runs a backward with grad disabled unless create_graph=True; only then
        # does once_differentiable's wrapper do anything (it makes a second backward through
        # these gradients raise), so the common case skips its no_grad context.
        if torch.is_grad_enabled():
            return _fused_grads_once(ctx, dout)
        return _fused_grads(ctx, dout)


def _fused_grads(ctx, dout: torch.Tensor) -> tuple:
    """Gradients of :class:`_FusedSCSA` (x, None for the configuration, each parameter)."""
    # Unpacked for the check that nothing saved was modified in place since the forward;
    # the parameters themselves are the forward's (ctx.prm holds the same tensors).
    x, ws, *_ = ctx.saved_tensors
    dx, flat = _backward(ctx.cfg, x, dout, ctx.prm, ctx.plan, ws, need_dx=ctx.needs_input_grad[0])
    grads = _param_grads(flat, ctx.plan)
    return (dx, None, *(g if need else None for g, need in zip(grads, ctx.needs_input_grad[2:])))


_fused_grads_once = once_differentiable(_fused_grads)


# autograd.Function.apply without its per-call wrapper: up to torch 2.13 that wrapper is Python
# (signature binding, a functorch-transform check, and a pass unwrapping dead functorch wrappers
# over all 19 arguments) around the C apply called here. Outside functorch transforms only x can
# be such a wrapper (the parameters are the module's own), so only x is unwrapped.
# These are torch internals: a torch without them keeps the public apply.
try:
    _fused_base_apply = torch._C._FunctionBase.__dict__["apply"].__get__(None, _FusedSCSA)
    _transforms_active = torch._C._are_functorch_transforms_active
    _unwrap_if_dead = torch._C._functorch.unwrap_if_dead
except (AttributeError, KeyError):
    _fused_base_apply = None


def _fused_apply(x: torch.Tensor, cfg: _Config, params: tuple[torch.Tensor, ...]) -> torch.Tensor:
    """``_FusedSCSA.apply(x, cfg, *params)``, through the C apply directly where it may be."""
    if _fused_base_apply is None or _transforms_active():
        return _FusedSCSA.apply(x, cfg, *params)
    return _fused_base_apply(_unwrap_if_dead(x), cfg, *params)


# ----------------------------------------------------------------------------- custom operators
#
# The same forward and backward as PyTorch operators, so that torch.compile keeps them in
# its graph (fullgraph, no break) instead of tracing into the launches. The layer's
# configuration travels as plain scalars (kernel sizes, window, the three GroupNorm eps,
# the attention scaling), so a compiled graph means the same thing in any process. The
# forward returns the float32 workspace beside the output: the backward reads it
# (X_H, X_W, the gates, the pooled tokens, softmax statistics), as the autograd Function
# saves it. Inputs are validated when a new kind of input is planned, not on every call.


def _op_config(c: int, kernel_sizes: list[int], window: int, eps_h: float, eps_w: float, eps_p: float,
               scale_tokens: bool) -> _Config:
    key = (c, tuple(kernel_sizes), window, eps_h, eps_w, eps_p, scale_tokens)
    cfg = _op_configs.get(key)
    if cfg is None:
        cfg = _op_configs[key] = _Config(channels=c, kernel_sizes=key[1], window=window, eps_h=eps_h, eps_w=eps_w,
                                         eps_p=eps_p, scale_mode="tokens" if scale_tokens else "channels")
    return cfg


_op_configs: dict[tuple, _Config] = {}


def _op_plan(op: str, cfg: _Config, x: torch.Tensor, params: list[torch.Tensor]) -> _Plan:
    """The plan for an operator call; the inputs are validated in full when a new plan is
    made (the parameter count on every call)."""
    if len(params) != 2 * len(cfg.kernel_sizes) + 9:
        raise ValueError(f"scsa_yolo::{op}: {len(params)} parameters for {len(cfg.kernel_sizes)} conv groups "
                         f"(expected {2 * len(cfg.kernel_sizes) + 9})")
    key = _plan_key(cfg, x, params[0].dtype)
    plan = _plans.get(key)
    if plan is None:
        reason = None
        if not (x.dim() == 4 and x.dtype in (torch.float16, torch.bfloat16, torch.float32)):
            reason = f"x must be a 4-D float16, bfloat16 or float32 tensor, got {tuple(x.shape)} {x.dtype}"
        elif cfg.window < 1 or not 1 <= len(cfg.kernel_sizes) <= _MAX_GROUPS or cfg.channels % len(cfg.kernel_sizes):
            reason = f"window {cfg.window}, kernel sizes {cfg.kernel_sizes}, {cfg.channels} channels"
        elif [tuple(p.shape) for p in params] != _param_shapes(cfg):
            reason = f"parameter shapes {[tuple(p.shape) for p in params]}, expected {_param_shapes(cfg)}"
        else:
            reason = _device_reason(x.device.type) or _input_reason(cfg, x, params)
        if reason is not None:
            raise ValueError(f"scsa_yolo::{op}: {reason}")
        plan = _store_plan(key, _Plan(cfg, x, params[0].dtype))
    return plan


def _param_shapes(cfg: _Config) -> list[tuple[int, ...]]:
    """Shapes of the flat parameter list of :func:`_params` for a configuration."""
    c, cg = cfg.channels, cfg.channels // len(cfg.kernel_sizes)
    return ([(cg, 1, k) for k in cfg.kernel_sizes] + [(cg,)] * len(cfg.kernel_sizes) + [(c,)] * 6
            + [(c, 1, 1, 1)] * 3)


# Both operators take any strides (the kernels are stride-aware) and return out / dx in
# x's memory format (empty_like, in the real and the fake implementation alike). Tagged
# flexible_layout, Inductor passes them the layout it chose for the neighbouring
# convolutions (channels-last on a GPU) whatever its default constraint for custom
# operators is; under a stride-fixing default it would restore the traced (contiguous)
# strides before the operator and convert its output back: a pass over the map each way.
_OP_TAGS = (torch.Tag.flexible_layout,) if hasattr(torch.Tag, "flexible_layout") else ()


# The operators are registered a level below torch.library.custom_op: each kernel is the
# Python function itself, called by the dispatcher, without custom_op's per-call wrappers
# (argument defaults, pytree, an output-aliasing check). A compiled graph calls them once per
# layer per step; in a compiled YOLO11n batch on a lent H100 host the three custom_op calls
# took 1.2 ms, most of it in those wrappers (session 14). Fake kernels and the autograd
# formula are registered through torch.library as before.
_lib = torch.library.Library("scsa_yolo", "FRAGMENT")
_lib.define("fused_forward(Tensor x, Tensor[] params, int[] kernel_sizes, int window, float eps_h, float eps_w, "
            "float eps_p, bool scale_tokens) -> (Tensor, Tensor)", tags=_OP_TAGS)
_lib.define("fused_backward(Tensor x, Tensor dout, Tensor ws, Tensor[] params, int[] kernel_sizes, int window, "
            "float eps_h, float eps_w, float eps_p, bool scale_tokens, bool need_dx) -> (Tensor, Tensor)",
            tags=_OP_TAGS)
_lib.define("fused_blend(Tensor x, Tensor g, Tensor[] params, int[] kernel_sizes, int window, float eps_h, "
            "float eps_w, float eps_p, bool scale_tokens, int res) -> Tensor", tags=_OP_TAGS)


def _op_forward(x, params, kernel_sizes, window, eps_h, eps_w, eps_p, scale_tokens):
    """SCSA(x) of a layer given by its parameters (:func:`_params` order) and scalars;
    returns (out, float32 workspace for :func:`_op_backward`)."""
    cfg = _op_config(x.shape[1], kernel_sizes, window, eps_h, eps_w, eps_p, scale_tokens)
    plan = _op_plan("fused_forward", cfg, x, params)
    out, _, ws = _forward(cfg, x, _Params(tuple(params), len(kernel_sizes)), plan, clean=True)
    return out, ws


def _op_forward_fake(x, params, kernel_sizes, window, eps_h, eps_w, eps_p, scale_tokens):
    # B, H and W may be symbolic (the kernels take them at run time, inside the operator);
    # C is fixed by the parameters.
    b, c, h, w = x.shape[0], int(x.shape[1]), x.shape[2], x.shape[3]
    numel = _layout(_fwd_workspace(b, c, h, w, window))[1]
    return torch.empty_like(x), x.new_empty((numel,), dtype=torch.float32)


def _op_backward(x, dout, ws, params, kernel_sizes, window, eps_h, eps_w, eps_p, scale_tokens, need_dx):
    """Gradients of :func:`_op_forward`: (dx, or an empty tensor when not need_dx; every
    parameter gradient flattened into one buffer of the parameters' dtype)."""
    cfg = _op_config(x.shape[1], kernel_sizes, window, eps_h, eps_w, eps_p, scale_tokens)
    plan = _op_plan("fused_backward", cfg, x, params)
    if ws.numel() != plan.fws_numel or dout.shape != x.shape or dout.dtype != x.dtype:
        raise ValueError("scsa_yolo::fused_backward: ws, dout and x do not come from one fused_forward")
    dx, flat = _backward(cfg, x, dout, _Params(tuple(params), len(kernel_sizes)), plan, ws, need_dx)
    return (dx if dx is not None else x.new_empty((0,))), flat


def _op_backward_fake(x, dout, ws, params, kernel_sizes, window, eps_h, eps_w, eps_p, scale_tokens, need_dx):
    dx = torch.empty_like(x) if need_dx else x.new_empty((0,))
    return dx, x.new_empty((sum(p.numel() for p in params),), dtype=params[0].dtype)


def _op_setup_context(ctx, inputs, output) -> None:
    x, params, *scalars = inputs
    ctx.save_for_backward(x, output[1], *params)
    ctx.scalars = scalars
    ctx.mark_non_differentiable(output[1])
    ctx.set_materialize_grads(False)


def _op_grad(ctx, dout, _dws):
    x, ws, *params = ctx.saved_tensors
    need_x, need_params = ctx.needs_input_grad[0], ctx.needs_input_grad[1]
    if dout is None:
        return None, [None] * len(params), None, None, None, None, None, None
    dx, flat = torch.ops.scsa_yolo.fused_backward(x, dout, ws, params, *ctx.scalars, need_x)
    grads = flat.split([p.numel() for p in params])
    return (dx if need_x else None,
            [(g if p.dim() == 1 else g.view(p.shape)) if need else None
             for g, p, need in zip(grads, params, need_params)],
            None, None, None, None, None, None)


def _op_blend(x, g, params, kernel_sizes, window, eps_h, eps_w, eps_p, scale_tokens, res):
    """The residual form ``res`` of BLEND_MODES (x + g SCSA(x), or x + g (SCSA(x) - x)), g (C,),
    stored by the output pass: what a compiled graph calls at inference, one node where the
    unfolded form is fused_forward and a pointwise kernel of its own. No autograd formula:
    callers use it only with grad disabled."""
    cfg = _op_config(x.shape[1], kernel_sizes, window, eps_h, eps_w, eps_p, scale_tokens)
    plan = _op_plan("fused_blend", cfg, x, params)
    if res not in BLEND_MODES.values() or g.shape != (cfg.channels,) or g.device != x.device:
        raise ValueError(f"scsa_yolo::fused_blend: res {res} (expected one of {sorted(BLEND_MODES.values())}), "
                         f"g {tuple(g.shape)} on {g.device} (expected ({cfg.channels},) on {x.device})")
    out, _, _ = _forward(cfg, x, _Params(tuple(params), len(kernel_sizes)), plan, g=g, res=res)
    return out


def _op_blend_fake(x, g, params, kernel_sizes, window, eps_h, eps_w, eps_p, scale_tokens, res):
    return torch.empty_like(x)


for _name, _kernel, _fake in (("fused_forward", _op_forward, _op_forward_fake),
                              ("fused_backward", _op_backward, _op_backward_fake),
                              ("fused_blend", _op_blend, _op_blend_fake)):
    _lib.impl(_name, _kernel, "CompositeExplicitAutograd")
    torch.library.register_fake(f"scsa_yolo::{_name}", _fake, lib=_lib)
torch.library.register_autograd("scsa_yolo::fused_forward", _op_grad, setup_context=_op_setup_context, lib=_lib)


def _ops_forward(x: torch.Tensor, cfg: _Config, params: list[torch.Tensor]) -> torch.Tensor:
    return torch.ops.scsa_yolo.fused_forward(x, params, list(cfg.kernel_sizes), cfg.window, cfg.eps_h, cfg.eps_w,
                                             cfg.eps_p, cfg.scale_mode == "tokens")[0]


#: The residual forms the output pass can store (ResidualAttention, the gated AttendedBottleneck).
BLEND_MODES = {"residual": 1, "gated": 2}


def scsa_blend(module: nn.Module, x: torch.Tensor, g: torch.Tensor, mode: str) -> torch.Tensor:
    """``x + g * SCSA(x)`` (mode "residual") or ``x + g * (SCSA(x) - x)`` (mode "gated") in
    the five launches of SCSA(x) alone, g (C,) per channel: the residual costs no pass of its
    own over the map. Inference only (nothing is saved for a backward), for a layer and input
    that :func:`supports` accepts; (B, C, H, W) -> same. Rounds once, in float32, where the
    unfused expression rounds after each operation; g = 0 returns x exactly. Under
    ``torch.compile`` it is one ``scsa_yolo::fused_blend`` node of the graph."""
    if torch.compiler.is_compiling():
        cfg = _config(module)
        return torch.ops.scsa_yolo.fused_blend(x, g, _params(module), list(cfg.kernel_sizes), cfg.window, cfg.eps_h,
                                               cfg.eps_w, cfg.eps_p, cfg.scale_mode == "tokens", BLEND_MODES[mode])
    cfg = _module_info(module)[1] or _config(module)
    params = tuple(_params(module))
    out, _, _ = _forward(cfg, x, _Params(params, len(cfg.kernel_sizes)), g=g, res=BLEND_MODES[mode])
    return out


def scsa_forward(module: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """SCSA(x) for a layer and input that :func:`supports` accepts; (B, C, H, W) -> same.

    Differentiable in x and every parameter of the layer (the backward is fused too).
    Eager calls use the autograd Function (less host time per call); under
    ``torch.compile`` the layer becomes one ``scsa_yolo::fused_forward`` node of the
    graph (and one ``fused_backward`` in the backward graph).
    """
    if torch.compiler.is_compiling():
        return _ops_forward(x, _config(module), _params(module))
    cfg = _module_info(module)[1] or _config(module)
    if EAGER_OPS:
        return _ops_forward(x, cfg, _params(module))
    params = tuple(_params(module))
    if torch.is_grad_enabled() and (x.requires_grad or any(p.requires_grad for p in params)):
        return _fused_apply(x, cfg, params)
    out, _, _ = _forward(cfg, x, _Params(params, len(cfg.kernel_sizes)))
    return out
