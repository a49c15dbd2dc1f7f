#!/usr/bin/env bash
# Issue 16's GPU evidence: the same 16-run grid slice (benchmarks/ray_gpu_slice.yaml) on one
# GPU, first through the local process pool (--devices 0 x SLOTS), then through a local Ray
# with 1/SLOTS of the GPU per task (--backend ray --gpus-per-run 1/SLOTS). Wall times go to
# $OUT/wall_times.txt; both reports and a diff of them to $OUT; records and logs come back as
# $OUT/ray_compare.tgz.
#   OUT=runs/ray-gpu bash benchmarks/ray_gpu_compare.sh   (needs scsa-yolo[ray] on PATH)
set -u
OUT=${OUT:-runs/ray-gpu}
WORK=${WORK:-/tmp/scsa-ray}
SLOTS=${SLOTS:-16}
LIMIT=${LIMIT:-200}  # seconds each backend may take
GRID="$(dirname "$0")/ray_gpu_slice.yaml"
mkdir -p "$OUT" "$WORK"
export SCSA_YOLO_DATA="$WORK/datasets" YOLO_OFFLINE=1
TIMES="$OUT/wall_times.txt"
# shellcheck source=benchmarks/timed_run.sh
source "$(dirname "$0")/timed_run.sh"

nvidia-smi -L | tee "$OUT/gpus.txt"
run data scsa-yolo data prepare synthetic --set num_train=800 --set num_val=400 --no-progress
run local timeout "$LIMIT" scsa-yolo bench --grid "$GRID" --devices "$(python3 -c "print(','.join(['0'] * $SLOTS))")" \
    --out "$WORK/local"
run ray timeout "$LIMIT" scsa-yolo bench --grid "$GRID" --backend ray \
    --gpus-per-run "$(python3 -c "print(1 / $SLOTS)")" --out "$WORK/ray"
for backend in local ray; do cp "$WORK/$backend/report.md" "$OUT/report_$backend.md" 2>/dev/null; done
diff "$OUT/report_local.md" "$OUT/report_ray.md" > "$OUT/report.diff" && echo "reports identical" | tee -a "$TIMES" \
    || echo "reports differ: see report.diff" | tee -a "$TIMES"
(cd "$WORK" && find local ray -maxdepth 3 -type f \( -name record.json -o -name worker.log -o -name 'report.*' \) \
    -print0 | tar czf "$OUT/ray_compare.tgz" --null -T -)
