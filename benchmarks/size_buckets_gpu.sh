#!/usr/bin/env bash
# Issue 28 item 1 in one device call: the fused SCSA with run-time map sizes (this tree)
# against the tree in $OLD (constant sizes), on one GPU:
#  1. sizes: YOLOv8n-SCSA's three layers through a training step and 14 rectangular
#     validation shapes, each tree with an empty Triton cache: compiles and seconds per step;
#  2. parity of this tree with the float32 reference (six YOLO shapes, rectangular ones,
#     channels-last), fp32 and fp16;
#  3. graph-replayed forward and forward + backward at the six YOLO shapes, processes of the
#     two trees alternating (new, old, new, old), each tree with its own warm Triton cache.
#   OUT=DIR OLD=path/to/old/tree bash benchmarks/size_buckets_gpu.sh
set -u
OUT=${OUT:-runs/size-buckets}
OLD=${OLD:?set OLD to a checkout of the tree to compare with}
ROUNDS=${ROUNDS:-5}
mkdir -p "$OUT"
TIMES="$OUT/wall_times.txt"
# shellcheck source=benchmarks/timed_run.sh
source "$(dirname "$0")/timed_run.sh"
B=benchmarks/scsa_size_buckets.py
nvidia-smi -L | tee "$OUT/gpus.txt"
TC=$(mktemp -d)
run sizes_new env TRITON_CACHE_DIR="$TC/sizes_new" PYTHONPATH=. timeout 240 python3 $B sizes --out "$OUT" --tag new
run sizes_old env TRITON_CACHE_DIR="$TC/sizes_old" PYTHONPATH="$OLD" timeout 240 python3 $B sizes --out "$OUT" --tag old --val-shapes ${OLD_VAL_SHAPES:-3}
run parity env TRITON_CACHE_DIR="$TC/sizes_new" PYTHONPATH=. timeout 200 python3 $B parity --out "$OUT"
for r in ${ALTERNATIONS:-1 2}; do
    run "time_new_$r" env TRITON_CACHE_DIR="$TC/time_new" PYTHONPATH=. timeout 200 python3 $B time --out "$OUT" --tag "new_$r" --rounds "$ROUNDS"
    run "time_old_$r" env TRITON_CACHE_DIR="$TC/time_old" PYTHONPATH="$OLD" timeout 200 python3 $B time --out "$OUT" --tag "old_$r" --rounds "$ROUNDS"
done
(cd "$OUT" && tar czf size_buckets.tgz --exclude=size_buckets.tgz ./*)
