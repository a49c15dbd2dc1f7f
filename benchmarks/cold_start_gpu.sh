#!/usr/bin/env bash
# Issue 28 on one GPU, in one device call (about 8 minutes):
#  1. graph-replayed fused SCSA at the six YOLO shapes, this tree and the tree in $OLD_SRC
#     (constant map sizes), one process each (benchmarks/scsa_size_buckets.py time);
#  2. the cold start of a short stock training run with rectangular validation over mixed
#     aspect ratios, YOLOv8n plain vs SCSA, cold and warm Triton caches, after
#     `scsa-yolo warmup`, and SCSA of $OLD_SRC cold (benchmarks/yolo_cold_start.py).
# The machine has no package index: $WHEELS holds ultralytics, ultralytics-thop, polars,
# pycocotools; both trees are installed with pip --target (setuptools from the image).
#   OUT=DIR WHEELS=DIR OLD_SRC=DIR bash benchmarks/cold_start_gpu.sh
set -u
OUT=${OUT:-runs/cold-start-gpu}
WHEELS=${WHEELS:?set WHEELS to a folder of wheels}
OLD_SRC=${OLD_SRC:?set OLD_SRC to a source tree of the scsa-yolo to compare with}
mkdir -p "$OUT"
TIMES="$OUT/wall_times.txt"
# shellcheck source=benchmarks/timed_run.sh
source "$(dirname "$0")/timed_run.sh"
export PYTHONUNBUFFERED=1 YOLO_OFFLINE=1
nvidia-smi -L | tee "$OUT/gpus.txt"
PIP="python3 -m pip install --no-deps --no-index --quiet"
run install_deps $PIP --target /tmp/deps "$WHEELS"/*.whl
run install_new $PIP --no-build-isolation --target /tmp/site .
run install_old $PIP --no-build-isolation --target /tmp/site_old "$OLD_SRC"
B=benchmarks/scsa_size_buckets.py
TC=$(mktemp -d)
run time_new env TRITON_CACHE_DIR="$TC/new" PYTHONPATH=/tmp/site timeout 100 python3 $B time --out "$OUT" --tag new --rounds ${ROUNDS:-3}
run time_old env TRITON_CACHE_DIR="$TC/old" PYTHONPATH=/tmp/site_old timeout 100 python3 $B time --out "$OUT" --tag old --rounds ${ROUNDS:-3}
run cold_start env PYTHONPATH=/tmp/site:/tmp/deps timeout ${COLD_TIMEOUT:-330} python3 benchmarks/yolo_cold_start.py \
    --work /tmp/cold --out "$OUT/cold" ${COLD_ARGS:---old-site /tmp/site_old} --warmup-jobs 8 --warm-repeats ${WARM_REPEATS:-1}
(cd "$OUT" && tar czf cold_start.tgz --exclude=cold_start.tgz ./*)
