#!/usr/bin/env bash
# Wall time of a real stock `yolo train` (issue 15 item 4): the plain YOLOv8n and
# YOLOv8n-SCSA (default placement) for EPOCHS epochs on the built-in synthetic set at 640 px,
# batch 16, on GPU 0, in ROUNDS interleaved rounds (plain, SCSA, plain, SCSA, ...).
# Needs scsa-yolo installed where the `yolo` command's Python sees its start-up hook.
# Prints one line per run and writes them to $OUT/yolo_train_wall.txt.
#   OUT=results/perf EPOCHS=3 ROUNDS=2 bash benchmarks/yolo_train_wall.sh
set -u
OUT=${OUT:-runs/perf}
WORK=${WORK:-/tmp/scsa-train-wall}
EPOCHS=${EPOCHS:-3}
ROUNDS=${ROUNDS:-2}
mkdir -p "$OUT" "$WORK"
export SCSA_YOLO_DATA="$WORK/datasets" YOLO_OFFLINE=1
scsa-yolo data prepare synthetic --no-progress > "$WORK/data.log" 2>&1 || { cat "$WORK/data.log"; exit 1; }
DATA=$(ls "$SCSA_YOLO_DATA"/synthetic/*.yaml | head -1)
REPORT="$OUT/yolo_train_wall.txt"
echo "# yolo train, $EPOCHS epochs, 640 px, batch 16, $(nvidia-smi -L | head -1), data $DATA" | tee "$REPORT"
for round in $(seq 1 "$ROUNDS"); do
    for model in yolov8n.yaml yolov8n-scsa.yaml; do
        start=$(date +%s.%N)
        yolo train model="$model" data="$DATA" epochs="$EPOCHS" imgsz=640 batch=16 device=0 workers=4 \
            project="$WORK/runs" name="${model%.yaml}-r$round" exist_ok=True plots=False \
            > "$WORK/${model%.yaml}-r$round.log" 2>&1
        rc=$?
        end=$(date +%s.%N)
        layers=$(grep -c "SCSA" "$WORK/${model%.yaml}-r$round.log")
        printf 'round %s %-18s rc=%s wall_s=%.1f log_lines_naming_SCSA=%s\n' "$round" "$model" "$rc" \
            "$(python3 -c "print($end - $start)")" "$layers" | tee -a "$REPORT"
    done
done
