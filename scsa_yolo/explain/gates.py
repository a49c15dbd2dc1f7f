"""The gates an attention layer applied to an image, captured with forward hooks.

Nothing in the layers is changed: hooks on their submodules record what those submodules
returned during one forward pass, and a small per-class rule turns the records into the
gates the layer multiplied its input by.

=====  ==========================================================  ============================
layer  spatial gate (N, G, H, W)                                   channel gate (N, C')
=====  ==========================================================  ============================
SCSA   per SMSA group k: mean over its channels of a_h[c,h]*a_w[c,w]  PCSA's sigmoid gate (C,)
       (a_h = sigmoid(norm_h(...)), hooked; G = K groups)
CA     mean over channels of sigmoid(conv_h)*sigmoid(conv_w)        --
ELA    mean over channels of sigmoid(norm(F(z_h)))*sigmoid(norm(F(z_w)))  --
CBAM   sigmoid(spatial_bn(...)) (G = 1)                            sigmoid(mlp(avg)+mlp(max))
SE     --                                                          sigmoid(fc2(...))
ECA    --                                                          sigmoid(conv(...))
FCA    --                                                          sigmoid(fc(...))
SA     per group: mean of its spatial half's gates                 the channel half's gates (C/2,)
EMA    per group: sigmoid(M), M from the hooked norm/conv3x3 outputs  --
CPCA   channel mean of S = P(D + strips) (unbounded, not a gate)   channel prior, range [0, 2]
=====  ==========================================================  ============================

SCSA's channel gate is computed inline in the layer, so it is recovered from the layer's
own input x and output y: whatever the order of SMSA and PCSA, y = x * a_h * a_w * g with
one g per channel, hence g_c = <y_c, u_c> / <u_c, u_c> with u = x * a_h * a_w (exact up to
rounding; NaN for a channel whose u is zero everywhere).

SCSA's fused GPU kernel skips the submodules, so :func:`reference_path` forces the plain
PyTorch path (``SCSA_YOLO_IMPL=reference``) while gates are captured.

The learned gates of the placements with an identity start (the per-channel g of
``backbone-res``/``neck-res``, y = x + g*attn(x), and of ``block-res``,
h + g*(attn(h) - h)) are weights, not activations: :func:`learned_gate_stats` summarises
them per layer (mean, mean |g|, max |g|), for the notes here and for the run records.
"""

from __future__ import annotations

import contextlib
import os
from collections import defaultdict
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn

from .layers import AttentionLayer

__all__ = ["GateCapture", "LayerGates", "capture_gates", "has_probe", "learned_gate_stats", "reference_path"]


@contextlib.contextmanager
def reference_path() -> Iterator[None]:
    """Run every SCSA layer on its PyTorch reference path inside the block."""
    from scsa_yolo.nn.scsa import IMPL_ENV_VAR

    before = os.environ.get(IMPL_ENV_VAR)
    os.environ[IMPL_ENV_VAR] = "reference"
    try:
        yield
    finally:
        if before is None:
            os.environ.pop(IMPL_ENV_VAR, None)
        else:
            os.environ[IMPL_ENV_VAR] = before


@dataclass
class LayerGates:
    """What one attention layer applied to N images.

    Attributes:
        layer: the layer.
        spatial: (N, G, H, W) spatial maps, G groups (1 when the layer has one map), or None.
        spatial_title: what ``spatial`` is.
        spatial_range: (low, high) the values are bound to; None when unbounded.
        channel: (N, C') per-channel gate, or None.
        channel_title: what ``channel`` is.
        channel_range: (low, high) bound, or None.
        notes: anything a reader should know (e.g. which channels SA's gate covers).
    """

    layer: AttentionLayer
    spatial: np.ndarray | None = None
    spatial_title: str = ""
    spatial_range: tuple[float, float] | None = (0.0, 1.0)
    channel: np.ndarray | None = None
    channel_title: str = ""
    channel_range: tuple[float, float] | None = (0.0, 1.0)
    notes: list[str] = field(default_factory=list)


@dataclass
class _Record:
    """Hooked tensors of one forward pass of one layer."""

    outputs: dict[str, list[torch.Tensor]] = field(default_factory=lambda: defaultdict(list))
    x: torch.Tensor | None = None
    y: torch.Tensor | None = None


@dataclass
class _Gates:
    spatial: torch.Tensor | None = None  # (B, G, H, W)
    channel: torch.Tensor | None = None  # (B, C')


@dataclass(frozen=True)
class _Probe:
    """Submodules to hook (their outputs are recorded in call order) and the rule."""

    submodules: Callable[[nn.Module], list[str]]
    derive: Callable[[nn.Module, _Record], _Gates]
    spatial_title: str = ""
    channel_title: str = ""
    spatial_range: tuple[float, float] | None = (0.0, 1.0)
    channel_range: tuple[float, float] | None = (0.0, 1.0)
    io: bool = False  # also record the layer's own input and output


def _hw(gate_h: torch.Tensor, gate_w: torch.Tensor) -> torch.Tensor:
    """(B, C, H) and (B, C, W) gates -> (B, C, H, W) per-channel map a_h[c,h] * a_w[c,w]."""
    return gate_h.unsqueeze(3) * gate_w.unsqueeze(2)


# ---------------------------------------------------------------------------- SCSA
def _scsa_submodules(layer: nn.Module) -> list[str]:
    if not getattr(layer, "use_smsa", True):
        return []
    if getattr(layer, "norm_position", "after") == "after":
        return ["norm_h", "norm_w"]
    names = [f"dwconvs.{i}" for i in range(len(layer.dwconvs))]
    if not getattr(layer, "shared", True):
        names += [f"dwconvs_w.{i}" for i in range(len(layer.dwconvs_w))]
    return names


def _scsa_derive(layer: nn.Module, rec: _Record) -> _Gates:
    x, y = rec.x.float(), rec.y.float()
    b, c, h, w = x.shape
    spatial = None
    total = x
    if getattr(layer, "use_smsa", True):
        if getattr(layer, "norm_position", "after") == "after":
            pre_h, pre_w = rec.outputs["norm_h"][0], rec.outputs["norm_w"][0]
        else:  # convolutions after the norm: the gate is sigmoid of the concatenated groups
            k = len(layer.dwconvs)
            pre_h = torch.cat([rec.outputs[f"dwconvs.{i}"][0] for i in range(k)], dim=1)
            if getattr(layer, "shared", True):
                pre_w = torch.cat([rec.outputs[f"dwconvs.{i}"][1] for i in range(k)], dim=1)
            else:
                pre_w = torch.cat([rec.outputs[f"dwconvs_w.{i}"][0] for i in range(k)], dim=1)
        per_channel = _hw(torch.sigmoid(pre_h.float()), torch.sigmoid(pre_w.float()))  # (B, C, H, W)
        total = x * per_channel
        spatial = per_channel.reshape(b, layer.groups, c // layer.groups, h, w).mean(dim=2)
    channel = None
    if getattr(layer, "use_pcsa", True):
        num = (y * total).sum(dim=(2, 3))
        den = (total * total).sum(dim=(2, 3))
        channel = torch.where(den > 0, num / den.clamp(min=torch.finfo(den.dtype).tiny), torch.nan)
        channel = torch.where(torch.isnan(channel), channel, channel.clamp(0.0, 1.0))
    return _Gates(spatial, channel)


# ---------------------------------------------------------------------------- rivals
def _se(layer, rec):
    return _Gates(channel=torch.sigmoid(rec.outputs["fc2"][0].float()).flatten(1))


def _eca(layer, rec):
    return _Gates(channel=torch.sigmoid(rec.outputs["conv"][0].float()).flatten(1))


def _fca(layer, rec):
    return _Gates(channel=torch.sigmoid(rec.outputs["fc"][0].float()).flatten(1))


def _ca(layer, rec):
    gate_h = torch.sigmoid(rec.outputs["conv_h"][0].float())[..., 0]  # (B, C, H)
    gate_w = torch.sigmoid(rec.outputs["conv_w"][0].float())[:, :, 0, :]  # (B, C, W)
    return _Gates(spatial=_hw(gate_h, gate_w).mean(dim=1, keepdim=True))


def _ela(layer, rec):
    pre_h, pre_w = rec.outputs["norm"][:2]  # called for H first, then for W
    return _Gates(spatial=_hw(torch.sigmoid(pre_h.float()), torch.sigmoid(pre_w.float())).mean(dim=1, keepdim=True))


def _cbam(layer, rec):
    avg, peak = rec.outputs["fc2"][:2]
    channel = torch.sigmoid(avg.float() + peak.float()).flatten(1)
    spatial = torch.sigmoid(rec.outputs["spatial_bn"][0].float())  # (B, 1, H, W)
    return _Gates(spatial, channel)


def _sa(layer, rec):
    x = rec.x.float()
    b, c, h, w = x.shape
    g = layer.groups
    x_chan = x.reshape(b * g, c // g, h, w).chunk(2, dim=1)[0]
    squeezed = x_chan.mean(dim=(2, 3), keepdim=True)
    channel = torch.sigmoid(layer.channel_weight.float() * squeezed + layer.channel_bias.float())  # (B*G, C/2G, 1, 1)
    spatial = torch.sigmoid(layer.spatial_weight.float() * rec.outputs["norm"][0].float() + layer.spatial_bias.float())
    return _Gates(spatial.mean(dim=1).reshape(b, g, h, w), channel.reshape(b, c // 2))


def _ema(layer, rec):
    x1, x2 = rec.outputs["norm"][0].float(), rec.outputs["conv3x3"][0].float()  # (B*G, c, H, W)
    bg, _, h, w = x1.shape
    w1 = torch.softmax(x1.mean(dim=(2, 3)), dim=1).unsqueeze(1)
    w2 = torch.softmax(x2.mean(dim=(2, 3)), dim=1).unsqueeze(1)
    m = torch.matmul(w1, x2.flatten(2)) + torch.matmul(w2, x1.flatten(2))  # (B*G, 1, H*W)
    return _Gates(spatial=torch.sigmoid(m).reshape(bg // layer.groups, layer.groups, h, w))


def _cpca(layer, rec):
    avg, peak = rec.outputs["fc2"][:2]
    channel = (torch.sigmoid(avg.float()) + torch.sigmoid(peak.float())).flatten(1)
    s = rec.outputs["proj"][1].float()  # proj runs three times: P(X), S = P(D + strips), P(S * F_c)
    return _Gates(spatial=s.mean(dim=1, keepdim=True), channel=channel)


def _probes() -> dict[type[nn.Module], _Probe]:
    from scsa_yolo.nn import CA, CBAM, CPCA, ECA, ELA, EMA, FCA, SA, SCSA, SE

    fixed = lambda *names: (lambda layer: list(names))  # noqa: E731
    return {
        SCSA: _Probe(_scsa_submodules, _scsa_derive,
                     "SMSA spatial gate a_h*a_w, mean over each group's channels",
                     "PCSA channel gate", io=True),
        SE: _Probe(fixed("fc2"), _se, channel_title="SE channel gate"),
        ECA: _Probe(fixed("conv"), _eca, channel_title="ECA channel gate"),
        FCA: _Probe(fixed("fc"), _fca, channel_title="FCA channel gate"),
        CA: _Probe(fixed("conv_h", "conv_w"), _ca, "CA gate a_h*a_w, mean over channels"),
        ELA: _Probe(fixed("norm"), _ela, "ELA gate y_h*y_w, mean over channels"),
        CBAM: _Probe(fixed("fc2", "spatial_bn"), _cbam, "CBAM spatial gate", "CBAM channel gate"),
        SA: _Probe(fixed("norm"), _sa, "SA spatial gate, mean over each group's spatial half",
                   "SA channel gate (channel half of every group)", io=True),
        EMA: _Probe(fixed("norm", "conv3x3"), _ema, "EMA gate sigmoid(M) per group"),
        CPCA: _Probe(fixed("fc2", "proj"), _cpca, "CPCA spatial attention S, channel mean (not a gate)",
                     "CPCA channel prior (sum of two sigmoids)", spatial_range=None, channel_range=(0.0, 2.0)),
    }


#: How each form applies its learned gate g.
GATE_FORMS = {"residual": "residual form y = x + g*attn(x)", "bottleneck": "gated bottleneck h + g*(attn(h) - h)"}


def learned_gate_stats(layers: Sequence[AttentionLayer]) -> list[dict]:
    """The learned gate g of every layer that has one (see :func:`find_attention_layers`).

    Returns:
        Per layer, in order: ``key``, ``label``, ``kind``, ``form``, ``channels`` and, over
        its C channels, ``mean`` (g), ``mean_abs`` (|g|), ``max_abs``, ``min`` and ``max``.
        g = 0 everywhere means the attention is switched off (the plain model's function).
    """
    out = []
    for layer in layers:
        g = layer.residual_gate
        if g is None:
            continue
        g = g.detach().double()
        out.append({"key": layer.key, "label": layer.label, "kind": layer.kind, "form": layer.form,
                    "channels": int(g.numel()), "mean": float(g.mean()), "mean_abs": float(g.abs().mean()),
                    "max_abs": float(g.abs().max()), "min": float(g.min()), "max": float(g.max())})
    return out


def has_probe(layer: AttentionLayer) -> bool:
    """Whether :func:`capture_gates` knows how to read this layer's gates."""
    return type(layer.module) in _probes()


class GateCapture:
    """Hooks on the chosen layers; call the model, then :meth:`take` per forward pass.

    Use as a context manager so the hooks are removed::

        with GateCapture(layers) as capture:
            model(x)
            gates = capture.take()  # {layer key: (spatial, channel) tensors}
    """

    def __init__(self, layers: Sequence[AttentionLayer]) -> None:
        probes = _probes()
        self.layers = [layer for layer in layers if type(layer.module) in probes]
        self.skipped = [layer for layer in layers if type(layer.module) not in probes]
        self._probe = {layer.key: probes[type(layer.module)] for layer in self.layers}
        self._records: dict[str, _Record] = {layer.key: _Record() for layer in self.layers}
        self._handles: list = []

    def __enter__(self) -> "GateCapture":
        for layer in self.layers:
            probe, record = self._probe[layer.key], self._records[layer.key]
            submodules = dict(layer.module.named_modules())
            for name in probe.submodules(layer.module):
                self._handles.append(submodules[name].register_forward_hook(self._recorder(record, name)))
            if probe.io:
                self._handles.append(layer.module.register_forward_hook(self._io_recorder(record)))
        return self

    def __exit__(self, *exc) -> None:
        for handle in self._handles:
            handle.remove()
        self._handles.clear()

    @staticmethod
    def _recorder(record: _Record, name: str):
        def hook(module, inputs, output):
            record.outputs[name].append(output.detach())
        return hook

    @staticmethod
    def _io_recorder(record: _Record):
        def hook(module, inputs, output):
            record.x, record.y = inputs[0].detach(), output.detach()
        return hook

    def take(self) -> dict[str, _Gates]:
        """Gates of the forward pass just run, per layer key; clears the records."""
        out = {}
        for layer in self.layers:
            record = self._records[layer.key]
            if not record.outputs and record.x is None:
                continue  # the layer did not run (not on this path)
            out[layer.key] = self._probe[layer.key].derive(layer.module, record)
            self._records[layer.key] = _Record()
        return out


def capture_gates(model: nn.Module, layers: Sequence[AttentionLayer], batches: Sequence[torch.Tensor],
                  progress: Callable[[int, int], None] | None = None) -> list[LayerGates]:
    """Run ``model`` on every (B, 3, H, W) batch and collect each layer's gates.

    Args:
        model: the PyTorch detection model (``YOLO(...).model``), any device.
        layers: the layers to read (see :func:`~scsa_yolo.explain.layers.find_attention_layers`).
        batches: input batches, already on the model's device, values in [0, 1].
        progress: called with (batches done, total) after each batch.

    Returns:
        One :class:`LayerGates` per layer that has a probe, in the order of ``layers``;
        arrays are stacked over every image of every batch.
    """
    probes = _probes()
    parts: dict[str, list[_Gates]] = defaultdict(list)
    with GateCapture(layers) as capture, reference_path(), torch.no_grad():
        for i, batch in enumerate(batches):
            model(batch)
            for key, gates in capture.take().items():
                parts[key].append(gates)
            if progress is not None:
                progress(i + 1, len(batches))
    result = []
    for layer in capture.layers:
        probe = probes[type(layer.module)]
        pieces = parts.get(layer.key, [])
        stack = lambda attr: (torch.cat([getattr(p, attr) for p in pieces]).cpu().numpy()  # noqa: E731
                              if pieces and getattr(pieces[0], attr) is not None else None)
        gates = LayerGates(layer, stack("spatial"), probe.spatial_title, probe.spatial_range,
                           stack("channel"), probe.channel_title, probe.channel_range)
        if type(layer.module).__name__ == "SA":
            gates.notes.append("SA gates the first half of each group's channels by channel and the second "
                               "half by position; the channel gate lists the first halves, group by group")
        for g in learned_gate_stats([layer]):
            gates.notes.append(f"{GATE_FORMS[g['form']]}: learned g has mean {g['mean']:+.3f}, "
                               f"mean |g| {g['mean_abs']:.3f}, range [{g['min']:+.3f}, {g['max']:+.3f}]")
        result.append(gates)
    return result
