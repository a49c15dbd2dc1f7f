"""Probe of the fused SCSA's reduction pass (R): X_H = mean_W x, X_W = mean_H x.

R reads x once and writes almost nothing, yet it ran at about 40% of the copy bandwidth
(44 us for 52 MB at (128, 80, 80) on an H100). This script times R beside simpler
kernels that read the same bytes, to separate the access pattern from the arithmetic:

* ``flat_sum``: contiguous blocks, one float out per block (the read ceiling);
* ``r_current``: the shipped kernel (``fwd_reduce_kernel``) with the default tiles;
* ``r_partial``: one (CB channels, BH rows) tile per program, no loop, dense column
  runs; writes row sums and a partial column sum per row block (finished by torch here);
* ``torch_mean_w`` / ``torch_mean_h``: PyTorch's own reductions, for scale.

Each kernel is timed after a read-only L2 flush (CUDA events, median), checked against
torch, and can be run under Nsight Compute (``--ncu``: a few launches each, names
``probe_*`` and ``fwd_reduce_kernel``).

    PYTHONPATH=. python3 benchmarks/scsa_reduce_probe.py --out results/perf
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch
import triton
import triton.language as tl

from scsa_yolo.nn import scsa_fast
from scsa_yolo.nn.scsa import SCSA

sys.path.insert(0, str(Path(__file__).resolve().parent))
from scsa_layer import bench_clean_l2  # noqa: E402 (benchmarks/ is not a package)


@triton.jit
def probe_flat_sum(x_ptr, out_ptr, BLOCK: tl.constexpr):
    """out[p] = sum of x[p*BLOCK : (p+1)*BLOCK] (float32)."""
    pid = tl.program_id(0)
    v = tl.load(x_ptr + pid * BLOCK + tl.arange(0, BLOCK)).to(tl.float32)
    tl.store(out_ptr + pid, tl.sum(v, axis=0))


@triton.jit
def probe_r_partial(
    x_ptr, xh_ptr, part_ptr,
    C: tl.constexpr, H: tl.constexpr, W: tl.constexpr,
    CB: tl.constexpr, BH: tl.constexpr, W0: tl.constexpr, W1: tl.constexpr, NCB: tl.constexpr,
    NRB: tl.constexpr,
):
    """One (CB channels, BH rows) tile: xh[b, c, h] = mean_w x; part[b, c, rb, w] =
    sum over the block's rows (x contiguous NCHW)."""
    pid = tl.program_id(0)
    rb = pid % NRB
    cblk = (pid // NRB) % NCB
    b = pid // (NRB * NCB)
    c = cblk * CB + tl.arange(0, CB)
    h = rb * BH + tl.arange(0, BH)
    hm = h < H
    row = x_ptr + ((b * C + c)[:, None, None] * H + h[None, :, None]) * W
    col0 = tl.arange(0, W0)
    v0 = tl.load(row + col0[None, None, :], mask=hm[None, :, None], other=0.0).to(tl.float32)
    if W1 > 0:
        col1 = W0 + tl.arange(0, W1)
        v1 = tl.load(row + col1[None, None, :], mask=hm[None, :, None] & (col1 < W)[None, None, :],
                     other=0.0).to(tl.float32)
    rs = tl.sum(v0, axis=2)
    if W1 > 0:
        rs += tl.sum(v1, axis=2)
    tl.store(xh_ptr + (b * C + c)[:, None] * H + h[None, :], rs * (1.0 / W), mask=hm[None, :])
    pbase = part_ptr + ((b * C + c)[:, None] * NRB + rb) * W
    tl.store(pbase + col0[None, :], tl.sum(v0, axis=1))
    if W1 > 0:
        tl.store(pbase + col1[None, :], tl.sum(v1, axis=1), mask=(col1 < W)[None, :])


def _p2(n: int) -> int:
    return 1 << max(0, (int(n) - 1).bit_length())


def probes(shape: tuple[int, int, int, int], dtype: torch.dtype) -> dict[str, tuple]:
    """name -> (launch fn, check fn returning the max relative error)."""
    b, c, h, w = shape
    x = torch.randn(shape, device="cuda", dtype=dtype)
    xf = x.float()
    ref_h, ref_w = xf.mean(3), xf.mean(2)
    out: dict[str, tuple] = {}

    block = 8192
    sums = torch.empty(x.numel() // block, device="cuda", dtype=torch.float32)
    out["flat_sum"] = (lambda: probe_flat_sum[(sums.numel(),)](x, sums, BLOCK=block),
                       lambda: float((sums.sum() - xf.sum()).abs() / xf.abs().sum()))

    layer = SCSA(c).cuda().to(dtype)
    cfg = scsa_fast._config(layer)
    prm = scsa_fast._Params(tuple(scsa_fast._params(layer)), len(cfg.kernel_sizes))
    plan = scsa_fast._Plan(cfg, x, prm.wq.dtype)
    ws = torch.empty(plan.fws_numel, device="cuda", dtype=torch.float32)
    _, grid, consts = plan.split[0]
    consts = dict(consts)
    warps = consts.pop("num_warps")
    seg_h, seg_w = plan.fws["xh"], plan.fws["xw"]
    xh = ws.narrow(0, seg_h.off, seg_h.numel)
    xw = ws.narrow(0, seg_w.off, seg_w.numel)
    kern = scsa_fast._kernels().fwd.fwd_reduce_kernel
    sizes = getattr(plan, "split_sizes", [[]])[0]  # run-time sizes (issue 28); none before
    out["r_current"] = (lambda: kern[grid](x, xh, xw, *sizes, **consts, num_warps=warps),
                        lambda: max(_rel(xh.view(b, c, h), ref_h), _rel(xw.view(b, c, w), ref_w)))

    for bh_rows, cb in ((16, 4), (16, 8), (8, 8), (32, 2)):
        bh = min(_p2(h), bh_rows)
        nrb = -(-h // bh)
        w0 = 1 << (w.bit_length() - 1)
        w1 = _p2(w - w0) if w > w0 else 0
        cbb = min(cb, c)
        ncb = c // cbb
        xh2 = torch.empty((b, c, h), device="cuda", dtype=torch.float32)
        part = torch.empty((b, c, nrb, w), device="cuda", dtype=torch.float32)
        warps = 4 if cbb * bh * w <= 8192 else 8

        def run(xh2=xh2, part=part, bh=bh, nrb=nrb, w0=w0, w1=w1, cbb=cbb, ncb=ncb, warps=warps):
            probe_r_partial[(b * ncb * nrb,)](x, xh2, part, C=c, H=h, W=w, CB=cbb, BH=bh, W0=w0, W1=w1,
                                              NCB=ncb, NRB=nrb, num_warps=warps)

        def check(xh2=xh2, part=part):
            return max(_rel(xh2, ref_h), _rel(part.sum(2) / h, ref_w))

        out[f"r_partial_bh{bh}_cb{cbb}"] = (run, check)

    out["torch_mean_w"] = (lambda: x.mean(3), lambda: 0.0)
    out["torch_mean_h"] = (lambda: x.mean(2), lambda: 0.0)
    return out


def _rel(a: torch.Tensor, ref: torch.Tensor) -> float:
    return float((a - ref).norm() / ref.norm())


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", type=Path, default=None, help="folder for scsa_reduce_probe.{json,md}")
    ap.add_argument("--shape", action="append", default=None, help="C,H,W (repeatable); default the 80x80 pair")
    ap.add_argument("--ncu", action="store_true", help="a few launches of each probe, for Nsight Compute")
    args = ap.parse_args(argv)
    shapes = [tuple(int(v) for v in s.split(",")) for s in (args.shape or ["128,80,80", "256,40,40"])]
    rows = []
    for chw in shapes:
        shape = (32, *chw)
        nbytes = 2 * torch.Size(shape).numel()
        for name, (fn, check) in probes(shape, torch.float16).items():
            fn()
            torch.cuda.synchronize()
            err = check()
            if args.ncu:
                for _ in range(2):
                    fn()
                torch.cuda.synchronize()
                continue
            us = bench_clean_l2(fn, reps=50, warmup=5)
            rows.append({"shape": list(chw), "probe": name, "us": round(us, 1),
                         "read_GBps": round(nbytes / us / 1e3), "rel_err": err})
            print(f"{chw} {name:24s} {us:7.1f} us  {nbytes / us / 1e3:6.0f} GB/s  err {err:.1e}", flush=True)
    if args.out and rows:
        args.out.mkdir(parents=True, exist_ok=True)
        dev = torch.cuda.get_device_name()
        (args.out / "scsa_reduce_probe.json").write_text(json.dumps({"device": dev, "rows": rows}, indent=1))
        lines = ["# Reduction-pass probe (batch 32, fp16)", "", f"Device: {dev}; torch {torch.__version__}, "
                 f"triton {triton.__version__}. Median us after a read-only L2 flush.", "",
                 "| C,H,W | probe | us | read GB/s | rel err |", "|---|---|---|---|---|"]
        lines += [f"| {','.join(map(str, r['shape']))} | {r['probe']} | {r['us']} | {r['read_GBps']} | "
                  f"{r['rel_err']:.1e} |" for r in rows]
        (args.out / "scsa_reduce_probe.md").write_text("\n".join(lines) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
