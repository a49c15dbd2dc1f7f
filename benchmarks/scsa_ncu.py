"""Run a few fused SCSA forwards inside a profiler range, for Nsight Compute.

    ncu --profile-from-start off --kernel-name regex:fwd_ --section SpeedOfLight \\
        --section Occupancy --section WarpStateStats --csv --page details \\
        python3 benchmarks/scsa_ncu.py --shape 128,80,80 > ncu.csv

Compiles outside the range (warm-up call), then profiles ``--calls`` forwards of batch
``--batch`` in ``--dtype``. Only the kernels inside the range are profiled.
``--summarize ncu.csv`` prints the main figures of such a CSV as one table.
"""

from __future__ import annotations

import argparse
import csv
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from scsa_layer import DTYPES, make_layer, parse_shape  # noqa: E402 (benchmarks/ is not a package)


#: Metrics worth a glance, by their Nsight Compute names.
SUMMARY = ["Duration", "Memory Throughput", "DRAM Throughput", "Registers Per Thread", "Achieved Occupancy",
           "Theoretical Occupancy", "Block Limit Registers", "Waves Per SM", "L2 Hit Rate", "Mem Busy",
           "Max Bandwidth", "Warp Cycles Per Issued Instruction", "Issued Warp Per Scheduler"]


def summarize(path: Path) -> str:
    """One line per profiled kernel launch: name and the SUMMARY metrics (value unit)."""
    kernels: dict[str, dict[str, str]] = {}
    with open(path, newline="") as fh:
        lines = [ln for ln in fh if ln.startswith('"')]  # ncu prints its own log lines too
    for row in csv.DictReader(lines):
        key = f"{row['ID']}:{row['Kernel Name'][:28]}"
        if row["Metric Name"] in SUMMARY:
            kernels.setdefault(key, {})[row["Metric Name"]] = f"{row['Metric Value']} {row['Metric Unit']}".strip()
    out = []
    for key, metrics in kernels.items():
        out.append(key + " | " + "; ".join(f"{m}: {metrics[m]}" for m in SUMMARY if m in metrics))
    return "\n".join(out)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--shape", type=parse_shape, default=(128, 80, 80), help="C,H,W")
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--dtype", default="fp16", choices=sorted(DTYPES))
    ap.add_argument("--calls", type=int, default=1)
    ap.add_argument("--summarize", type=Path, help="print the main figures of an ncu --csv --page details file")
    args = ap.parse_args(argv)
    if args.summarize:
        print(summarize(args.summarize))
        return 0
    device = torch.device("cuda")
    x = torch.randn((args.batch, *args.shape), device=device, dtype=DTYPES[args.dtype])
    layer = make_layer(args.shape[0], seed=2).to(device=device, dtype=DTYPES[args.dtype]).eval()
    layer.impl = "fast"
    with torch.no_grad():
        layer(x)
        torch.cuda.synchronize()
        torch.cuda.profiler.start()
        for _ in range(args.calls):
            layer(x)
        torch.cuda.synchronize()
        torch.cuda.profiler.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
