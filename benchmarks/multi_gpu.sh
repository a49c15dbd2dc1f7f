#!/usr/bin/env bash
# Two-GPU checks of issue 6 on a machine with GPUs 0 and 1 (the lent nvidia-h200-x2):
#   1. `scsa-yolo train` of YOLOv8n-SCSA for 5 epochs with DDP on both GPUs (--device 0,1),
#      then the same on one GPU (--device 0);
#   2. a 4-run synthetic-gpu grid (none/SCSA x seeds 0,1, $BENCH_EPOCHS epochs) with one run
#      per GPU (--devices 0,1), then the same grid with both runs at a time on GPU 0
#      (--devices 0,0).
# Wall times go to $OUT/wall_times.txt; logs and run records stay under $OUT.
# Usage: OUT=runs/multi_gpu bash benchmarks/multi_gpu.sh   (needs scsa-yolo on PATH)
set -u
OUT=${OUT:-runs/multi_gpu}
mkdir -p "$OUT"
TIMES="$OUT/wall_times.txt"
export SCSA_YOLO_DATA="${SCSA_YOLO_DATA:-$OUT/datasets}"

# shellcheck source=benchmarks/timed_run.sh
source "$(dirname "$0")/timed_run.sh"

nvidia-smi -L | tee "$OUT/gpus.txt"
# The grid's dataset first (1600 train / 400 val at 160 px), so no timed command pays for it.
run data scsa-yolo data prepare synthetic --set num_train=1600 --set num_val=400 --no-progress
TRAIN=(--data synthetic --model yolov8n --attn scsa --epochs 5 --imgsz 160 --batch 32 workers=2)
run train_ddp_gpus_0_1 scsa-yolo train "${TRAIN[@]}" --device 0,1 --project "$OUT/train" --name ddp_gpus_0_1
run train_gpu_0 scsa-yolo train "${TRAIN[@]}" --device 0 --project "$OUT/train" --name gpu_0
GRID=(--grid synthetic-gpu --attns none,scsa --seeds 0,1 --epochs "${BENCH_EPOCHS:-10}")
run bench_gpus_0_1 scsa-yolo bench "${GRID[@]}" --devices 0,1 --out "$OUT/bench_gpus_0_1"
run bench_gpu_0_twice scsa-yolo bench "${GRID[@]}" --devices 0,0 --out "$OUT/bench_gpu_0_twice"
