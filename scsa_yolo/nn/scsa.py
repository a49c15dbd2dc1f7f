"""SCSA: Spatial and Channel Synergistic Attention.

Si et al., "SCSA: Exploring the Synergistic Effects Between Spatial and Channel
Attention" (Neurocomputing 2025), section 3, equations 1-13:

    SCSA(X) = PCSA(SMSA(X))

* SMSA (shared multi-semantic spatial attention): X is averaged over W and over H into two
  1-D sequences (B, C, H) and (B, C, W); the channels are split into K groups, group i goes
  through a depth-wise 1-D convolution with kernel k_i (the same convolutions serve both
  sequences), the groups are concatenated, normalised (GroupNorm with K groups), squashed
  with a sigmoid and multiplied back onto X along H and along W.
* PCSA (progressive channel-wise self-attention): the SMSA output is average-pooled with a
  7x7 window and stride 7, normalised (GroupNorm(1, C)), projected to Q, K, V by depth-wise
  1x1 convolutions and fed to single-head self-attention *across channels*
  (Q, K, V of shape (B, C, N), N = H'W'); the result is averaged over N and gates the
  SMSA output per channel through a sigmoid.

The default layer has exactly ``16 * C`` parameters. Every ablation of the paper's Table 1
is a constructor keyword (see :class:`SCSA`), so a YAML row can select it.

The optional fused GPU kernel lives in :mod:`scsa_yolo.nn.scsa_fast`; this module holds the
plain PyTorch reference and dispatches to the kernel only when it says it supports the
layer and the input.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from . import scsa_fast
from ._validate import check_choice, layer_error

__all__ = ["SCSA", "IMPL_ENV_VAR"]

#: Environment variable that overrides every layer's ``impl`` ("auto", "reference", "fast").
IMPL_ENV_VAR = "SCSA_YOLO_IMPL"

_IMPLS = ("auto", "reference", "fast")
_NORMS = ("gn", "bn", "ln", "none")
_NORM_POSITIONS = ("after", "before")
_ORDERS = ("smsa_first", "pcsa_first")
_SCALE_MODES = ("channels", "tokens")
_QKV_INITS = ("default", "official")

# The fused path's module (about 25 ms to import, no Triton: it imports Triton itself on
# first use and says why when it cannot). A module global, so torch.compile, which cannot
# trace an import inside forward, finds it in every process; tests swap it.
_fast_module = scsa_fast


def _global_hooks() -> bool:
    """Whether module hooks registered for every module are set (torch.nn.modules.module's)."""
    from torch.nn.modules import module as torch_module

    return bool(getattr(torch_module, "_global_forward_hooks", None)
                or getattr(torch_module, "_global_forward_pre_hooks", None))


def _make_norm(kind: str, channels: int, groups: int) -> nn.Module:
    """Normalisation of a (B, C, L) sequence in SMSA.

    'gn': GroupNorm with one group per SMSA branch (the paper). 'bn': BatchNorm1d over C.
    'ln': layer norm over the whole (C, L) sequence with a per-channel affine, i.e.
    GroupNorm(1, C) -- the sequence length changes with the input size, so a LayerNorm with
    a fixed normalized_shape is not an option. 'none': identity.
    """
    if kind == "gn":
        return nn.GroupNorm(groups, channels)
    if kind == "bn":
        return nn.BatchNorm1d(channels)
    if kind == "ln":
        return nn.GroupNorm(1, channels)
    return nn.Identity()


def _depthwise_convs(channels: int, kernel_sizes: Sequence[int]) -> nn.ModuleList:
    """One depth-wise Conv1d per channel group, 'same' padding, with bias."""
    group_channels = channels // len(kernel_sizes)
    return nn.ModuleList(
        nn.Conv1d(group_channels, group_channels, k, padding=k // 2, groups=group_channels, bias=True)
        for k in kernel_sizes
    )


class SCSA(nn.Module):
    """Spatial and Channel Synergistic Attention; input and output (B, C, H, W).

    Args:
        channels: C, divisible by the number of groups K and by ``num_heads``.
        kernel_sizes: odd kernel size of each group's depth-wise 1-D convolution; its length
            is the number of groups K (paper: (3, 5, 7, 9), K = 4). Table 1 "G1(3)" is
            ``(3,)``, "G2(3,7)" is ``(3, 7)``.
        window: PCSA pooling window (and stride), 7 in the paper. ``None`` or 0 pools
            globally (Table 1 "w/o PC").
        groups: K; defaults to ``len(kernel_sizes)``. Giving both checks they agree.
        use_smsa / use_pcsa: Table 1 "w/o SMSA" / "w/o PCSA".
        order: 'smsa_first' (the paper) or 'pcsa_first' (Table 1 "PCSA Prior").
        norm: SMSA normalisation: 'gn' (paper), 'bn', 'ln' (GroupNorm(1, C), i.e. layer
            norm over the (C, L) sequence) or 'none'.
        norm_position: 'after' the convolutions (paper) or 'before' them (Table 1
            "GN Prior": the pooled sequences X_H / X_W are normalised, then convolved).
        progressive: False pools globally, same as ``window=None``.
        num_heads: PCSA heads (paper: 1). Each head attends over ``C / num_heads`` channels.
        channel_shuffle: interleave the K SMSA groups before splitting channels into heads
            (ShuffleNet-style, ``groups=K``), so every head sees channels of every group;
            the head outputs are un-shuffled before gating. Table 1 "Multi-head + Shuffle"
            is ``num_heads=4, channel_shuffle=True`` in the registry.
        shared: True (paper) uses the same convolutions for the H and W sequences; False
            adds ``dwconvs_w`` for W (Table 1 "Shared -> Unshared").
        scale_mode: 'channels' scales Q K^T by 1/sqrt(C / num_heads) (paper); 'tokens' by
            1/sqrt(H'W') (Table 1 "Scaled sqrt(H*W)").
        attn_drop: dropout probability p (0 <= p < 1) on PCSA's softmax attention map
            (B, heads, C/heads, C/heads), in training mode only; eval is unaffected. The
            authors' ResNet-101 ImageNet configuration uses 0.1, their other configurations
            0. Default 0 (no dropout). The fused kernel has no dropout, so a layer with
            p > 0 runs the reference path while training.
        qkv_init: how the PCSA projections ``q``, ``k``, ``v`` (depth-wise 1x1 convolutions,
            weights (C, 1, 1, 1), no bias) start. 'default': PyTorch's Conv2d default,
            Kaiming-uniform with a=sqrt(5) over fan_in = 1, i.e. U(-1, 1) (std 0.577).
            'official': what the authors' mmpretrain backbones do to every Conv2d
            (mmengine 'Kaiming' init: normal, mode='fan_out', ReLU gain), i.e.
            N(0, 2 / C), since PyTorch counts fan_out = C for a depth-wise weight. With C = 64
            the std is 0.177, so Q K^T starts small and the channel softmax near uniform.
            Only the starting values differ: the state dict has the same keys and shapes.
        impl: 'auto' (fused kernel when available and supported, else reference),
            'reference', or 'fast' (kernel or RuntimeError). The environment variable
            ``SCSA_YOLO_IMPL`` overrides it when set.

    Small feature maps: the pooling window is chosen per axis as ``min(window, H)`` and
    ``min(window, W)``, with the same stride and floor rounding (``nn.AvgPool2d``
    defaults). For H, W >= window this is exactly the paper's 7x7 / stride-7 pooling
    (trailing rows/columns that do not fill a window are dropped, as there). A smaller axis
    is pooled in one window, so a 5x5 or 1x1 map gives a single token (N = 1), the
    same as the global-pooling ablation. The attention itself still runs across channels:
    with y the (B, C) globally pooled, normalised map and q, k, v its per-channel scalings,
    the gate is ``sigmoid(softmax(q k^T / sqrt(C)) v)``, where q k^T is the (C, C) outer
    product of two C-vectors and each channel's gate mixes the v of every channel.

    Export: tracing (ONNX) records the clamped window as a constant, so a graph exported
    at H, W >= window serves every size >= window; export at the smallest size you need.
    The 'bn' ablation inherits BatchNorm's limits (training on batch 1 with a 1x1 map has a
    single value per channel and fails).

    Numerics: the channel attention (Q K^T, softmax, @ V) is computed in float32 whatever
    the input dtype, and both gates are cast back to the input dtype, so the output dtype
    always equals the input dtype (also under autocast).
    """

    # Class-level defaults for options added after checkpoints were written: Ultralytics
    # pickles whole modules, and an older SCSA object unpickles without these attributes.
    attn_drop: float = 0.0
    qkv_init: str = "default"

    def __init__(
        self,
        channels: int,
        kernel_sizes: Sequence[int] = (3, 5, 7, 9),
        window: int | None = 7,
        *,
        groups: int | None = None,
        use_smsa: bool = True,
        use_pcsa: bool = True,
        order: str = "smsa_first",
        norm: str | None = "gn",
        norm_position: str = "after",
        progressive: bool = True,
        num_heads: int = 1,
        channel_shuffle: bool = False,
        shared: bool = True,
        scale_mode: str = "channels",
        attn_drop: float = 0.0,
        qkv_init: str = "default",
        impl: str = "auto",
    ) -> None:
        super().__init__()
        kernel_sizes = self._check_kernel_sizes(kernel_sizes)
        num_groups = len(kernel_sizes) if groups is None else groups
        if not isinstance(num_groups, int) or isinstance(num_groups, bool) or num_groups < 1:
            raise layer_error("SCSA", "groups", groups, "must be a positive int")
        if num_groups != len(kernel_sizes):
            raise layer_error(
                "SCSA", "kernel_sizes", list(kernel_sizes),
                f"must hold one kernel size per group: groups={num_groups}, got {len(kernel_sizes)} sizes",
            )
        if not isinstance(channels, int) or isinstance(channels, bool) or channels < 1:
            raise layer_error("SCSA", "channels", channels, "must be a positive int")
        if channels % num_groups:
            raise layer_error(
                "SCSA", "channels", channels, f"must be divisible by the number of groups K={num_groups}"
            )
        if not isinstance(num_heads, int) or isinstance(num_heads, bool) or num_heads < 1 or channels % num_heads:
            raise layer_error("SCSA", "num_heads", num_heads, f"must be a positive divisor of channels={channels}")
        if window is not None and (not isinstance(window, int) or isinstance(window, bool) or window < 0):
            raise layer_error("SCSA", "window", window, "must be a positive int, or None/0 for global pooling")
        norm = "none" if norm is None else str(norm).lower()
        check_choice("SCSA", "norm", norm, _NORMS)
        check_choice("SCSA", "norm_position", norm_position, _NORM_POSITIONS)
        check_choice("SCSA", "order", order, _ORDERS)
        check_choice("SCSA", "scale_mode", scale_mode, _SCALE_MODES)
        check_choice("SCSA", "impl", impl, _IMPLS)
        check_choice("SCSA", "qkv_init", qkv_init, _QKV_INITS)
        if not (use_smsa or use_pcsa):
            raise layer_error("SCSA", "use_smsa/use_pcsa", False, "at least one branch must stay enabled")
        if isinstance(attn_drop, bool) or not isinstance(attn_drop, (int, float)) or not 0 <= attn_drop < 1:
            raise layer_error(
                "SCSA", "attn_drop", attn_drop,
                "must be a dropout probability p with 0 <= p < 1 (the official ResNet-101 setting is 0.1)",
            )
        if attn_drop and not use_pcsa:
            raise layer_error(
                "SCSA", "attn_drop", attn_drop,
                "acts on PCSA's attention map, which use_pcsa=False removes; drop attn_drop or keep PCSA",
            )

        self.channels = channels
        self.groups = num_groups
        self.kernel_sizes = kernel_sizes
        self.window = window if (window and progressive) else None
        self.progressive = self.window is not None
        self.use_smsa = bool(use_smsa)
        self.use_pcsa = bool(use_pcsa)
        self.order = order
        self.norm = norm
        self.norm_position = norm_position
        self.num_heads = num_heads
        self.channel_shuffle = bool(channel_shuffle)
        self.shared = bool(shared)
        self.scale_mode = scale_mode
        self.attn_drop = float(attn_drop)
        self.qkv_init = qkv_init
        self.impl = impl

        # SMSA parameters: 7C (convs) + 4C (two norms) by default.
        if self.use_smsa:
            self.dwconvs = _depthwise_convs(channels, kernel_sizes)
            self.dwconvs_w = None if self.shared else _depthwise_convs(channels, kernel_sizes)
            self.norm_h = _make_norm(norm, channels, num_groups)
            self.norm_w = _make_norm(norm, channels, num_groups)
        else:
            self.dwconvs = self.dwconvs_w = self.norm_h = self.norm_w = None
        # PCSA parameters: 2C (norm) + 3C (q, k, v).
        if self.use_pcsa:
            self.norm_pcsa = nn.GroupNorm(1, channels)
            self.q = nn.Conv2d(channels, channels, 1, groups=channels, bias=False)
            self.k = nn.Conv2d(channels, channels, 1, groups=channels, bias=False)
            self.v = nn.Conv2d(channels, channels, 1, groups=channels, bias=False)
            if qkv_init == "official":
                for proj in (self.q, self.k, self.v):
                    # fan_out of a (C, 1, 1, 1) depth-wise weight is C: std sqrt(2 / C)
                    nn.init.kaiming_normal_(proj.weight, mode="fan_out", nonlinearity="relu")
        else:
            self.norm_pcsa = self.q = self.k = self.v = None

    @staticmethod
    def _check_kernel_sizes(kernel_sizes: Sequence[int]) -> tuple[int, ...]:
        if isinstance(kernel_sizes, int) and not isinstance(kernel_sizes, bool):
            # A YAML row [-1, 1, SCSA, [30]] is usually meant as 30 channels.
            raise layer_error(
                "SCSA", "kernel_sizes", kernel_sizes,
                "must be a list of odd ints, e.g. [3, 5, 7, 9]. The first positional argument of SCSA is "
                "kernel_sizes, not a channel count: SCSA keeps its input's channels, which a model YAML "
                "takes from the previous layer. For the paper's layer write [-1, 1, SCSA, []]",
            )
        if isinstance(kernel_sizes, (str, bytes)) or not isinstance(kernel_sizes, Sequence) or not kernel_sizes:
            raise layer_error(
                "SCSA", "kernel_sizes", kernel_sizes, "must be a non-empty list of odd ints, e.g. [3, 5, 7, 9]"
            )
        for k in kernel_sizes:
            if not isinstance(k, int) or isinstance(k, bool) or k < 1 or k % 2 == 0:
                raise layer_error(
                    "SCSA", "kernel_sizes", list(kernel_sizes),
                    f"every kernel size must be a positive odd int ('same' padding k//2), got {k!r}",
                )
        return tuple(kernel_sizes)

    def extra_repr(self) -> str:
        parts = [f"{self.channels}", f"kernel_sizes={self.kernel_sizes}", f"window={self.window}"]
        defaults = dict(use_smsa=True, use_pcsa=True, order="smsa_first", norm="gn", norm_position="after",
                        num_heads=1, channel_shuffle=False, shared=True, scale_mode="channels", attn_drop=0.0,
                        qkv_init="default", impl="auto")
        parts += [f"{k}={getattr(self, k)!r}" for k, v in defaults.items() if getattr(self, k) != v]
        return ", ".join(parts)

    # ------------------------------------------------------------------ dispatch
    def resolved_impl(self) -> str:
        """'auto', 'reference' or 'fast': ``SCSA_YOLO_IMPL`` when set, else ``self.impl``."""
        env = os.environ.get(IMPL_ENV_VAR, "").strip().lower()
        if env:
            if env not in _IMPLS:
                raise ValueError(f"{IMPL_ENV_VAR}={env!r} is not valid; use one of {', '.join(_IMPLS)}")
            return env
        return self.impl

    def fused_unsupported_reason(self) -> str | None:
        """Why this layer, in its current mode, must not use the fused kernel (None: it may).

        Checked here, before :func:`scsa_fast.supports`, for options the kernel does not
        implement, so that adding an option cannot make the fused path silently ignore it.
        """
        if self.training and self.attn_drop > 0:
            return f"attn_drop={self.attn_drop} in training mode (the fused kernel has no attention dropout)"
        return None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, C, H, W) -> (B, C, H, W), same dtype."""
        impl = self.resolved_impl()
        if impl != "reference" and not (torch.jit.is_tracing() or torch.onnx.is_in_onnx_export()):
            fast = _fast_module
            layer_reason = self.fused_unsupported_reason()
            if layer_reason is None and fast.supports(self, x):
                return fast.scsa_forward(self, x)
            if impl == "fast":
                if layer_reason is not None:
                    why = f"this layer uses {layer_reason}"
                else:
                    why = (
                        f"scsa_fast.supports() rejected this layer/input ({self.extra_repr()}; "
                        f"input {tuple(x.shape)} {x.dtype} on {x.device})"
                    )
                raise RuntimeError(
                    f"SCSA impl='fast' was requested but the fused kernel is unavailable: {why}. "
                    f"Use impl='auto' or set {IMPL_ENV_VAR}=reference to run the PyTorch path."
                )
        elif impl == "fast":
            raise RuntimeError("SCSA impl='fast' cannot be traced for export; use impl='reference' or 'auto'.")
        return self.forward_reference(x)

    #: Whether :meth:`fused_blend` may fold a residual into the kernel (False: the caller always
    #: computes the expression; benchmarks/yolo_e2e.py --unfolded times both in one process).
    fold_residual = True

    def fused_blend(self, x: torch.Tensor, g: torch.Tensor, mode: str) -> torch.Tensor | None:
        """``x + g * self(x)`` (mode "residual") or ``x + g * (self(x) - x)`` ("gated") with the
        residual folded into the fused kernel's output pass, g (C,) per channel; None where
        that does not apply and the caller computes the expression itself: a backward may
        follow (grad enabled and anything requires grad), tracing or torch.compile (the
        operator path), hooks on this layer (they must see its own output), or an input or
        layer the fused kernel does not take."""
        # compiling and tracing first: nothing below is worth tracing through
        if (not self.fold_residual or torch.compiler.is_compiling() or torch.jit.is_tracing()
                or torch.onnx.is_in_onnx_export()):
            return None
        if torch.is_grad_enabled() and (x.requires_grad or g.requires_grad or any(
                p.requires_grad for p in self.parameters())):
            return None
        if self.resolved_impl() == "reference" or _fast_module.EAGER_OPS:
            return None
        if self._forward_hooks or self._forward_pre_hooks or _global_hooks():
            return None
        if (g.dim() != 1 or g.numel() != self.channels or g.device != x.device
                or self.fused_unsupported_reason() is not None or not _fast_module.supports(self, x)):
            return None
        return _fast_module.scsa_blend(self, x, g, mode)

    def forward_reference(self, x: torch.Tensor) -> torch.Tensor:
        """Plain PyTorch SCSA; (B, C, H, W) -> (B, C, H, W)."""
        if not torch.jit.is_tracing() and (x.dim() != 4 or x.shape[1] != self.channels):
            raise ValueError(f"SCSA expects input (B, {self.channels}, H, W), got {tuple(x.shape)}")
        if self.order == "pcsa_first":
            return self._smsa(self._pcsa(x)) if self.use_smsa else self._pcsa(x)
        if self.use_smsa:
            x = self._smsa(x)
        return self._pcsa(x) if self.use_pcsa else x

    # ------------------------------------------------------------------ SMSA
    def _branch_convs(self, seq: torch.Tensor, convs: nn.ModuleList) -> torch.Tensor:
        """(B, C, L) -> (B, C, L): group i of C/K channels through convs[i] (eqs. 1-4)."""
        chunks = torch.split(seq, self.channels // self.groups, dim=1)
        return torch.cat([conv(chunk) for conv, chunk in zip(convs, chunks)], dim=1)

    def _spatial_attention(self, seq: torch.Tensor, convs: nn.ModuleList, norm: nn.Module) -> torch.Tensor:
        """(B, C, L) pooled sequence -> (B, C, L) sigmoid attention (eqs. 5-6)."""
        if self.norm_position == "before":
            return torch.sigmoid(self._branch_convs(norm(seq), convs))
        return torch.sigmoid(norm(self._branch_convs(seq, convs)))

    def _smsa(self, x: torch.Tensor) -> torch.Tensor:
        """Shared multi-semantic spatial attention (eq. 7); (B, C, H, W) -> (B, C, H, W)."""
        x_h = x.mean(dim=3)  # (B, C, H)
        x_w = x.mean(dim=2)  # (B, C, W)
        convs_w = self.dwconvs if self.shared else self.dwconvs_w
        attn_h = self._spatial_attention(x_h, self.dwconvs, self.norm_h).to(x.dtype)
        attn_w = self._spatial_attention(x_w, convs_w, self.norm_w).to(x.dtype)
        return x * attn_h.unsqueeze(3) * attn_w.unsqueeze(2)

    # ------------------------------------------------------------------ PCSA
    def _pool(self, xs: torch.Tensor) -> torch.Tensor:
        """Progressive compression (eq. 8); (B, C, H, W) -> (B, C, H', W')."""
        h, w = xs.shape[-2:]
        if self.window is None:
            return xs.mean(dim=(2, 3), keepdim=True)
        win = (min(self.window, h), min(self.window, w))
        return F.avg_pool2d(xs, win, stride=win)

    def _shuffle(self, t: torch.Tensor) -> torch.Tensor:
        """(B, C, N) -> (B, C, N), channel c = g * C/K + j moved to j * K + g."""
        b, c, n = t.shape
        return t.reshape(b, self.groups, c // self.groups, n).transpose(1, 2).reshape(b, c, n)

    def _unshuffle(self, t: torch.Tensor) -> torch.Tensor:
        """Inverse of :meth:`_shuffle` for (B, C)."""
        b, c = t.shape
        return t.reshape(b, c // self.groups, self.groups).transpose(1, 2).reshape(b, c)

    def _pcsa(self, xs: torch.Tensor) -> torch.Tensor:
        """Progressive channel-wise self-attention (eqs. 8-12); (B, C, H, W) -> (B, C, H, W)."""
        b, c = xs.shape[:2]
        y = self.norm_pcsa(self._pool(xs))
        n = y.shape[2] * y.shape[3]
        tokens = y.reshape(b, c, n).float()
        # q/k/v are depth-wise 1x1 convolutions, i.e. one scale per channel; applying the
        # weight directly is the same map and avoids a oneDNN depthwise-conv backward that
        # fails under torch.compile on CPU. Float32: C x C logits of fp16/bf16 maps overflow.
        q, k, v = (tokens * proj.weight.reshape(1, c, 1).float() for proj in (self.q, self.k, self.v))
        if self.channel_shuffle:
            q, k, v = self._shuffle(q), self._shuffle(k), self._shuffle(v)
        heads = self.num_heads
        q, k, v = (t.reshape(b, heads, c // heads, n) for t in (q, k, v))
        scale = (c // heads) ** -0.5 if self.scale_mode == "channels" else n**-0.5
        # Autocast would cast the matmuls back to fp16 on CUDA: keep them in float32.
        with torch.autocast(device_type=xs.device.type, enabled=False):
            attn = torch.softmax(torch.matmul(q, k.transpose(-2, -1)) * scale, dim=-1)  # (B, h, C/h, C/h)
            if self.attn_drop > 0:  # training only: eval leaves the map as it is
                attn = F.dropout(attn, self.attn_drop, training=self.training)
            out = torch.matmul(attn, v).mean(dim=-1).reshape(b, c)  # mean over N
        if self.channel_shuffle:
            out = self._unshuffle(out)
        gate = torch.sigmoid(out).to(xs.dtype)
        return xs * gate.reshape(b, c, 1, 1)

