"""Fused SCSA: Triton kernels with their own backward, same numbers as the reference.

The reference SCSA (:meth:`scsa_yolo.nn.scsa.SCSA.forward_reference`) launches some
twenty kernels and reads or writes the (B, C, H, W) map about ten times in the forward
pass. Everything SCSA computes between the first read of ``x`` and the output is small
((B, C, H), (B, C, W), (B, C, N) with N = (H/7)(W/7)), so the map itself needs only:

forward (3 reads + 1 write of x, 5 launches)
    1. reduce x along W and H              -> X_H (B, C, H), X_W (B, C, W)
    2. conv + GroupNorm + sigmoid (tiny)   -> a_h, a_w
    3. pool x * a_h * a_w per 7x7 window, without storing that product -> (B, C, N)
    4. GroupNorm(1) + channel attention (tiny) -> gate (B, C)
    5. out = x * a_h * a_w * gate

backward (2 reads of dout, 1 of x, 1 write of dx, 4 launches + one small sum)
    1. one pass over dout and x: every reduction of dout * x the small graph needs
    2. channel-attention backward (tiny)
    3. gate / conv backward (tiny)
    4. dx = a_h a_w (dout * gate + dP / area) + dX_H / W + dX_W / H

Only x and small tensors are saved for the backward (never x * a_h * a_w). All
arithmetic is float32 whatever the input dtype (the reference rounds its gates to the
input dtype; the fused path rounds once, at the output), so the fused path matches a
float32 reference at least as closely as the reference does in fp16/bf16.

Selection: :func:`supports` accepts the paper's SCSA (any channel count divisible by the
group count, up to four groups with any odd kernel sizes, any window, both attention
scalings) on CUDA tensors of dtype float16, bfloat16 or float32, any strides (kernels
are stride-aware, so channels_last inputs are read in place, not copied). Everything else
(ablations without SMSA/PCSA, other norms, several heads, unshared convolutions, global
pooling, export/tracing, torch.compile tracing) runs the reference. For tests on machines
without a GPU, ``SCSA_YOLO_TRITON_INTERPRET=1`` runs the same kernels in Triton's CPU
interpreter on CPU tensors. The parameters are the module's own, so checkpoints move
freely between the two paths.
"""

from __future__ import annotations

import importlib
import os
import sys
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


def _kernels() -> SimpleNamespace:
    """The Triton kernel modules, imported on first use."""
    if "ns" not in _kernel_state:
        error = _import_triton()
        if error is not None:
            raise RuntimeError(f"SCSA fused kernels unavailable: {error}")
        fwd: ModuleType = importlib.import_module("scsa_yolo.nn._scsa_kernels.forward")
        bwd: ModuleType = importlib.import_module("scsa_yolo.nn._scsa_kernels.backward")
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
    """Parameters in the order the autograd function takes them (see :class:`_Params`)."""
    convs = module.dwconvs
    return (
        [conv.weight for conv in convs]
        + [conv.bias for conv in convs]
        + [module.norm_h.weight, module.norm_h.bias, module.norm_w.weight, module.norm_w.bias,
           module.norm_pcsa.weight, module.norm_pcsa.bias, module.q.weight, module.k.weight, module.v.weight]
    )


def unsupported_reason(module: nn.Module, x: torch.Tensor) -> str | None:
    """Why :func:`supports` says no for this layer and input (None when it says yes)."""
    if torch.compiler.is_compiling():
        return "torch.compile tracing (the reference path compiles)"
    if not isinstance(x, torch.Tensor) or x.dim() != 4:
        return "input is not a 4-D tensor"
    if x.dtype not in (torch.float16, torch.bfloat16, torch.float32):
        return f"dtype {x.dtype}"
    if x.device.type == "cpu":
        if not _interpret_requested():
            return f"CPU tensor (set {INTERPRET_ENV_VAR}=1 to run the kernels in Triton's interpreter)"
    elif x.device.type != "cuda":
        return f"device {x.device.type}"
    triton_error = _import_triton()
    if triton_error is not None:
        return triton_error
    if x.device.type == "cpu" and not _kernel_state.get("interpreted"):
        return "CPU tensor but triton is in compiled (GPU) mode"
    reason = _module_reason(module)
    if reason is not None:
        return reason
    b, c, h, w = x.shape
    if c != module.channels:
        return f"input has {c} channels, layer expects {module.channels}"
    if min(b, h, w) < 1:
        return "empty input"
    if x.numel() > _INT32_LIMIT or max(s * (n - 1) for s, n in zip(x.stride(), x.shape)) > _INT32_LIMIT:
        return "input too large for 32-bit indexing"
    win_h, win_w = min(module.window, h), min(module.window, w)
    if (h // win_h) * (w // win_w) > _MAX_TOKENS:
        return f"more than {_MAX_TOKENS} PCSA tokens"
    if _p2(c // len(module.dwconvs)) * _p2(max(h, w)) > _MAX_GATE_TILE:
        return "channel group x map side too large for one gate tile"
    for p in _params(module):
        if p.device != x.device or p.dtype not in (torch.float16, torch.bfloat16, torch.float32):
            return f"parameter on {p.device} / {p.dtype}"
    return None


def supports(module: nn.Module, x: torch.Tensor) -> bool:
    """True when :func:`scsa_forward` can run this layer on this input."""
    return unsupported_reason(module, x) is None


# ----------------------------------------------------------------------------- launch planning


def _p2(n: int) -> int:
    """Smallest power of two >= n (>= 1)."""
    return 1 << max(0, (int(n) - 1).bit_length())


@dataclass(frozen=True)
class _Plan:
    """Window geometry and tile sizes for one input shape."""

    B: int
    C: int
    H: int
    W: int
    WH: int
    WW: int
    HP: int
    WP: int
    N: int
    Cg: int
    alpha: float


_PLANE_TILE = int(os.environ.get("SCSA_YOLO_FAST_PLANE_TILE", "2048"))
_WINDOW_TILE = int(os.environ.get("SCSA_YOLO_FAST_WINDOW_TILE", "2048"))


def _plan(cfg: _Config, shape: torch.Size) -> _Plan:
    b, c, h, w = shape
    wh, ww = min(cfg.window, h), min(cfg.window, w)
    hp, wp = h // wh, w // ww
    n = hp * wp
    alpha = c**-0.5 if cfg.scale_mode == "channels" else n**-0.5
    return _Plan(b, c, h, w, wh, ww, hp, wp, n, c // len(cfg.kernel_sizes), alpha)


def _plane_tiles(p: _Plan) -> tuple[int, int, int, int]:
    """(CB, BH, BW, n_cblocks) for the kernels that stream whole rows."""
    bw = _p2(p.W)
    bh = min(_p2(p.H), max(1, _PLANE_TILE // bw))
    cb = min(_p2(p.C), max(1, _PLANE_TILE // (bh * bw)))
    return cb, bh, bw, -(-p.C // cb)


def _window_tiles(p: _Plan, n_win_cols: int) -> tuple[int, int, int, int, int]:
    """(CB, RB, JB, TB, n_cblocks) for the kernels that walk pooling windows."""
    rb, tb, jb = _p2(p.WH), _p2(p.WW), _p2(max(1, n_win_cols))
    cb = min(_p2(p.C), max(1, _WINDOW_TILE // (rb * jb * tb)))
    return cb, rb, jb, tb, -(-p.C // cb)


def _token_tiles(p: _Plan) -> tuple[int, int, int]:
    """(CB, NB, n_cblocks) for the channel-attention kernels (tl.dot needs >= 16)."""
    nb = max(16, _p2(p.N))
    cb = max(16, min(64, 4096 // nb, _p2(p.C)))
    return cb, nb, -(-p.C // cb)


def _warps(elements: int) -> int:
    return 8 if elements >= 8192 else 4


def _dot_precision(x: torch.Tensor) -> str:
    # The interpreter computes dots in float32 regardless; on the GPU, 3xTF32 keeps the
    # C x C logits at float32 accuracy on the tensor cores.
    return "ieee" if _kernel_state.get("interpreted") else "tf32x3"


class _Params:
    """Named view of the flat parameter list of :func:`_params`."""

    def __init__(self, params: tuple[torch.Tensor, ...], groups: int) -> None:
        self.conv_w = [t.contiguous() for t in params[:groups]]
        self.conv_b = [t.contiguous() for t in params[groups:2 * groups]]
        (self.gam_h, self.bet_h, self.gam_w, self.bet_w, self.gam_p, self.bet_p, self.wq, self.wk, self.wv) = (
            t.contiguous() for t in params[2 * groups:]
        )

    def padded_convs(self) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
        """Four weight and bias pointers; unused group slots repeat group 0."""
        w = self.conv_w + [self.conv_w[0]] * (_MAX_GROUPS - len(self.conv_w))
        b = self.conv_b + [self.conv_b[0]] * (_MAX_GROUPS - len(self.conv_b))
        return w, b


def _padded_kernel_sizes(cfg: _Config) -> list[int]:
    return list(cfg.kernel_sizes) + [1] * (_MAX_GROUPS - len(cfg.kernel_sizes))


# ----------------------------------------------------------------------------- forward


def _forward(cfg: _Config, x: torch.Tensor, prm: _Params, want_saved: bool):
    """Run the five forward launches; returns (out, saved tensors or None)."""
    k = _kernels()
    p = _plan(cfg, x.shape)
    dev = x.device
    f32 = torch.float32
    ng = len(cfg.kernel_sizes)
    sx = x.stride()

    xh = torch.empty((p.B, p.C, p.H), device=dev, dtype=f32)
    xw = torch.empty((p.B, p.C, p.W), device=dev, dtype=f32)
    cb, bh, bw, ncb = _plane_tiles(p)
    k.fwd.fwd_reduce_kernel[(p.B * ncb,)](
        x, xh, xw, p.C, p.H, p.W, *sx, 1.0 / p.W, 1.0 / p.H, ncb,
        CB=cb, BH=bh, BW=bw, num_warps=_warps(cb * bh * bw),
    )

    ah = torch.empty_like(xh)
    aw = torch.empty_like(xw)
    ws, bs = prm.padded_convs()
    ks = _padded_kernel_sizes(cfg)
    cgb, hb, wb = _p2(p.Cg), _p2(p.H), _p2(p.W)
    k.fwd.fwd_gate_kernel[(p.B * ng,)](
        xh, xw, ah, aw, *ws, *bs, prm.gam_h, prm.bet_h, prm.gam_w, prm.bet_w,
        p.C, p.H, p.W, p.Cg, cfg.eps_h, cfg.eps_w,
        K0=ks[0], K1=ks[1], K2=ks[2], K3=ks[3], NG=ng, CGB=cgb, HB=hb, WB=wb,
        num_warps=_warps(cgb * max(hb, wb)),
    )

    pooled = torch.empty((p.B, p.C, p.N), device=dev, dtype=f32)
    cbw, rb, jb, tb, ncbw = _window_tiles(p, p.WP)
    k.fwd.fwd_pool_kernel[(p.B * ncbw,)](
        x, ah, aw, pooled, p.C, p.H, p.W, *sx, p.WH, p.WW, p.HP, p.WP, 1.0 / (p.WH * p.WW), ncbw,
        CB=cbw, RB=rb, JB=jb, TB=tb, num_warps=_warps(cbw * rb * jb * tb),
    )

    gate = torch.empty((p.B, p.C), device=dev, dtype=f32)
    o = torch.empty_like(gate)
    lse = torch.empty_like(gate)
    stats = torch.empty((p.B, 2), device=dev, dtype=f32)
    tcb, nb, ntb = _token_tiles(p)
    k.fwd.fwd_pcsa_kernel[(p.B * ntb,)](
        pooled, prm.gam_p, prm.bet_p, prm.wq, prm.wk, prm.wv, gate, o, lse, stats,
        p.C, p.N, cfg.eps_p, p.alpha, 1.0 / p.N, ntb,
        CB=tcb, NB=nb, FB=1024, PREC=_dot_precision(x), num_warps=4,
    )

    out = torch.empty_like(x)
    k.fwd.fwd_apply_kernel[(p.B * ncb,)](
        x, ah, aw, gate, out, p.C, p.H, p.W, *sx, *out.stride(), ncb,
        CB=cb, BH=bh, BW=bw, num_warps=_warps(cb * bh * bw),
    )
    saved = (xh, xw, ah, aw, pooled, stats, gate, o, lse) if want_saved else None
    return out, saved


# ----------------------------------------------------------------------------- backward


def _backward(cfg: _Config, x: torch.Tensor, dout: torch.Tensor, prm: _Params, saved, need_dx: bool):
    """Run the backward launches; returns (dx or None, per-channel parameter sums (C, NSLOT))."""
    k = _kernels()
    p = _plan(cfg, x.shape)
    xh, xw, ah, aw, pooled, stats, gate, o, lse = saved
    dev = x.device
    f32 = torch.float32
    ng = len(cfg.kernel_sizes)
    kmax = max(cfg.kernel_sizes)
    nslot = k.slots["conv_w"] + kmax

    dgate = torch.empty((p.B, p.C), device=dev, dtype=f32)
    gh = torch.empty_like(xh)
    gw = torch.empty_like(xw)
    r_sum = torch.empty((p.B, p.C, p.H, p.WP), device=dev, dtype=f32)
    c_sum = torch.empty((p.B, p.C, p.HP, p.W), device=dev, dtype=f32)
    nj = -(-p.W // p.WW)
    ni = -(-p.H // p.WH)
    cbw, rb, jb, tb, ncbw = _window_tiles(p, nj)
    k.bwd.bwd_reduce_kernel[(p.B * ncbw,)](
        x, dout, ah, aw, gate, dgate, gh, gw, r_sum, c_sum,
        p.C, p.H, p.W, *x.stride(), *dout.stride(), p.WH, p.WW, p.HP, p.WP, ni, nj, ncbw,
        CB=cbw, RB=rb, JB=jb, TB=tb, num_warps=_warps(cbw * rb * jb * tb),
    )

    dyhat = torch.empty((p.B, p.C, p.N), device=dev, dtype=f32)
    s12 = torch.empty((p.B, 2, p.C), device=dev, dtype=f32)
    part = torch.empty((p.B, p.C, nslot), device=dev, dtype=f32)
    tcb, nb, ntb = _token_tiles(p)
    k.bwd.bwd_pcsa_kernel[(p.B * ntb,)](
        pooled, stats, prm.gam_p, prm.bet_p, prm.wq, prm.wk, prm.wv, gate, o, lse, dgate,
        dyhat, s12, part, p.C, p.N, p.alpha, 1.0 / p.N, nslot, ntb,
        CB=tcb, NB=nb, PREC=_dot_precision(x), num_warps=4,
    )

    dps = torch.empty_like(pooled)
    dxh = torch.empty_like(xh)
    dxw = torch.empty_like(xw)
    scr_h = torch.empty_like(xh)
    scr_w = torch.empty_like(xw)
    ws, bs = prm.padded_convs()
    ks = _padded_kernel_sizes(cfg)
    cgb, hb, wb = _p2(p.Cg), _p2(p.H), _p2(p.W)
    k.bwd.bwd_gate_kernel[(p.B * ng,)](
        xh, xw, gh, gw, r_sum, c_sum, pooled, stats, dyhat, s12, dps, dxh, dxw, scr_h, scr_w, part,
        *ws, *bs, prm.gam_h, prm.bet_h, prm.gam_w, prm.bet_w,
        p.C, p.H, p.W, p.Cg, p.N, p.HP, p.WP, p.WH, p.WW, 1.0 / (p.WH * p.WW), 1.0 / p.W, 1.0 / p.H,
        1.0 / (p.C * p.N), cfg.eps_h, cfg.eps_w, nslot,
        K0=ks[0], K1=ks[1], K2=ks[2], K3=ks[3], NG=ng, CGB=cgb, HB=hb, WB=wb, CFB=_p2(p.C), NBP=_p2(p.N),
        num_warps=_warps(cgb * max(hb, wb)),
    )

    dx = None
    if need_dx:
        dx = torch.empty_like(x)
        cb, bh, bw, ncb = _plane_tiles(p)
        k.bwd.bwd_dx_kernel[(p.B * ncb,)](
            dout, ah, aw, gate, dps, dxh, dxw, dx,
            p.C, p.H, p.W, *dout.stride(), *dx.stride(), p.WH, p.WW, p.HP, p.WP, ncb,
            CB=cb, BH=bh, BW=bw, num_warps=_warps(cb * bh * bw),
        )
    return dx, part.sum(dim=0)


def _param_grads(cfg: _Config, sums: torch.Tensor, params: tuple[torch.Tensor, ...], slots: dict) -> list:
    """Split the (C, NSLOT) per-channel sums into gradients shaped like the parameters."""
    groups = len(cfg.kernel_sizes)
    cg = cfg.channels // groups
    grads = []
    for g, ksz in enumerate(cfg.kernel_sizes):
        start = slots["conv_w"]
        grads.append(sums[g * cg:(g + 1) * cg, start:start + ksz].unsqueeze(1))
    for g in range(groups):
        grads.append(sums[g * cg:(g + 1) * cg, slots["conv_bias"]])
    for name in ("gam_h", "bet_h", "gam_w", "bet_w", "gam_p", "bet_p"):
        grads.append(sums[:, slots[name]])
    for name in ("wq", "wk", "wv"):
        grads.append(sums[:, slots[name]].reshape(cfg.channels, 1, 1, 1))
    return [grad.to(param.dtype).reshape(param.shape) for grad, param in zip(grads, params)]


class _FusedSCSA(torch.autograd.Function):
    """x, then the flat parameter list of :func:`_params` -> SCSA(x)."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, cfg: _Config, *params: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        prm = _Params(params, len(cfg.kernel_sizes))
        out, saved = _forward(cfg, x, prm, want_saved=True)
        ctx.cfg = cfg
        ctx.save_for_backward(x, *saved, *params)
        ctx.n_saved = len(saved)
        return out

    @staticmethod
    @once_differentiable
    def backward(ctx, dout: torch.Tensor):  # type: ignore[override]
        cfg: _Config = ctx.cfg
        tensors = ctx.saved_tensors
        x = tensors[0]
        saved = tensors[1:1 + ctx.n_saved]
        params = tensors[1 + ctx.n_saved:]
        prm = _Params(params, len(cfg.kernel_sizes))
        dx, sums = _backward(cfg, x, dout, prm, saved, need_dx=ctx.needs_input_grad[0])
        grads = _param_grads(cfg, sums, params, _kernels().slots)
        grads = [g if need else None for g, need in zip(grads, ctx.needs_input_grad[2:])]
        return (dx, None, *grads)


def scsa_forward(module: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """SCSA(x) for a layer and input that :func:`supports` accepts; (B, C, H, W) -> same.

    Differentiable in x and every parameter of the layer (the backward is fused too).
    """
    cfg = _config(module)
    params = _params(module)
    if torch.is_grad_enabled() and (x.requires_grad or any(p.requires_grad for p in params)):
        return _FusedSCSA.apply(x, cfg, *params)
    out, _ = _forward(cfg, x, _Params(tuple(params), len(cfg.kernel_sizes)), want_saved=False)
    return out
