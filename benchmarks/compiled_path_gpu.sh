#!/usr/bin/env bash
# Issue 15's GPU measurements of session 8, in one device call (up to 9 minutes on a bare machine):
#  1. the SCSA layer, reference vs fused, at the six YOLO shapes on this GPU: parity with the
#     float32 reference (the workspace layout of 890254f has only run in Triton's interpreter),
#     eager and graph-replayed times against the bandwidth floor (items 2 and 3);
#  2. compiled plain vs compiled SCSA training steps, the network compiled as Ultralytics'
#     compile=True trainer compiles it, in interleaved rounds in one process (item 4).
# Needs scsa-yolo and ultralytics installed. Everything lands in $OUT and in $OUT/compiled_path.tgz.
#   OUT=runs/compiled-path bash benchmarks/compiled_path_gpu.sh
set -u
OUT=${OUT:-runs/compiled-path}
mkdir -p "$OUT"
export YOLO_OFFLINE=1 PYTHONUNBUFFERED=1
TIMES="$OUT/wall_times.txt"
# shellcheck source=benchmarks/timed_run.sh
source "$(dirname "$0")/timed_run.sh"

nvidia-smi -L | tee "$OUT/gpus.txt"
run layer timeout 120 env PYTHONPATH=. python3 benchmarks/scsa_layer.py --out "$OUT" --dtypes fp16 --check-dtypes fp32 fp16
# Cold caches: the two compiled training graphs took 240-330+ s per base in session 8 (a
# warm Inductor cache: 61 s). Other bases: --models yolov8s or yolo11n, one call each.
run e2e_compile timeout 420 python3 benchmarks/yolo_e2e.py --out "$OUT" --compile --what train --models yolov8n \
    --rounds 5 --tag _compile
(cd "$OUT" && tar czf compiled_path.tgz --exclude=compiled_path.tgz ./*)
