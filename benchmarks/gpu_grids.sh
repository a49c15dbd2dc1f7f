#!/usr/bin/env bash
# GPU evidence for the placement and pretrained-weights issues, on one lent GPU, in two calls
# (each call fits the device tool's 10-minute limit; what a call leaves comes back as $OUT/*).
#
#   PHASE=placement: the synthetic-gpu grid (none + SE/ECA/CA/FCA/CBAM/SCSA x 5 placements x
#       3 seeds = 93 runs), SLOTS runs at a time on GPU 0; beside it, on one more slot, the
#       plain YOLOv8n pretrained on the same synthetic set for 20 epochs ($OUT/pretrain-plain.pt).
#   PHASE=extend: the same grid resumed on top of the committed records of
#       results/placement/records: only the runs they lack are trained (after a grid gains
#       attentions or placements).
#   PHASE=finetune PRETRAINED=path: the finetune-synthetic grid (every run starts from the
#       pretrained plain checkpoint, transferred into its model) and its from-scratch twin,
#       side by side, SLOTS/2 runs each.
#
# Wall times go to $OUT/wall_times.txt; records, logs and reports come back as one tarball.
# Usage: PHASE=placement OUT=runs/gpu bash benchmarks/gpu_grids.sh   (needs scsa-yolo on PATH)
set -u
OUT=${OUT:-runs/gpu}
WORK=${WORK:-/tmp/scsa-gpu}
SLOTS=${SLOTS:-16}
LIMIT=${LIMIT:-500}  # seconds the grids may take, so the tarball still gets written
mkdir -p "$OUT" "$WORK"
export SCSA_YOLO_DATA="$WORK/datasets" YOLO_OFFLINE=1
TIMES="$OUT/wall_times.txt"

slots() { python3 -c "print(','.join(['0'] * $1))"; }

# shellcheck source=benchmarks/timed_run.sh
source "$(dirname "$0")/timed_run.sh"

pack() {  # pack FOLDER...: records, specs, worker logs, transfer tables and reports (no weights,
    # detections or images: the tool brings back at most 16 MB a file)
    (cd "$WORK" && find "$@" -maxdepth 3 -type f \( -name record.json -o -name spec.json -o -name worker.log \
        -o -name transfer.txt -o -name 'report.*' -o -name args.yaml \) -print0 |
        tar czf "$OUT/$PHASE.tgz" --null -T -)
}

nvidia-smi -L | tee "$OUT/gpus.txt"
case "${PHASE:?set PHASE=placement, extend or finetune}" in
placement)
    run data scsa-yolo data prepare synthetic --set num_train=800 --set num_val=400 --no-progress
    [ -n "${SKIP_PRETRAIN:-}" ] || (
        run pretrain scsa-yolo train --data synthetic --model yolov8n --attn none --epochs 20 --imgsz 160 \
            --batch 32 --device 0 --project "$WORK/pretrain" --name plain val=False workers=2 cache=ram
        cp "$WORK/pretrain/plain/weights/last.pt" "$OUT/pretrain-plain.pt"
    ) &
    run placement timeout "$LIMIT" scsa-yolo bench --grid synthetic-gpu --devices "$(slots "$SLOTS")" \
        --out "$WORK/placement"
    wait
    pack placement pretrain
    ;;
extend)
    run data scsa-yolo data prepare synthetic --set num_train=800 --set num_val=400 --no-progress
    mkdir -p "$WORK/placement/synthetic"
    cp -r "$(dirname "$0")"/../results/placement/records/* "$WORK/placement/synthetic/"
    run placement timeout "$LIMIT" scsa-yolo bench --grid synthetic-gpu --devices "$(slots "$SLOTS")" \
        --out "$WORK/placement"
    pack placement
    ;;
finetune)
    for scenario in lowlight tiny thermal; do
        run "data_$scenario" scsa-yolo data prepare "synthetic-$scenario" --set num_train=800 --set num_val=400 \
            --no-progress
    done
    half=$((SLOTS / 2))
    run finetune timeout "$LIMIT" scsa-yolo bench --grid finetune-synthetic --pretrained "${PRETRAINED:?}" \
        --devices "$(slots "$half")" --out "$WORK/finetune" &
    run scratch timeout "$LIMIT" scsa-yolo bench --grid finetune-synthetic-scratch --devices "$(slots "$half")" \
        --out "$WORK/scratch" &
    wait
    pack finetune scratch
    ;;
*)
    echo "unknown PHASE=$PHASE (placement, extend or finetune)" >&2
    exit 2
    ;;
esac
