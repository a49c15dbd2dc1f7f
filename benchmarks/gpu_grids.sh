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
#   PHASE=tasks: the table6-synthetic (YOLOv8n-seg) and table2-synthetic-cls (YOLOv8n-cls)
#       grids side by side (SEG_SLOTS and the rest of SLOTS), each on a shorter schedule than
#       the shipped grid when TASK_SCALE=short (what fits one call of the device tool):
#       segmentation 10 epochs on 800/200 images, classification 20 epochs on 800/200 crops
#       (at 12, plain YOLOv8n-cls is still half-way up its learning curve on the shape-only
#       crops: 46.7 +- 5.4 % top-1 over 3 seeds on CPU against 62.0 +- 0.5 % at 20; see
#       results/table2-synthetic-cls/cpu_difficulty.md). TASKS="classify" (or "segment")
#       runs one grid alone on all SLOTS.
#       BENCH_ARGS go to both bench commands (a CPU rehearsal: DEVICE=cpu BENCH_ARGS="--seeds 0 ...").
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

DEVICE=${DEVICE:-0}  # cpu for a rehearsal of the script on a machine without a GPU
slots() { python3 -c "print(','.join(['$DEVICE'] * $1))"; }

# shellcheck source=benchmarks/timed_run.sh
source "$(dirname "$0")/timed_run.sh"

pack() {  # pack FOLDER...: records, specs, worker logs, transfer tables and reports (no weights,
    # detections or images: the tool brings back at most 16 MB a file)
    (cd "$WORK" && find "$@" -maxdepth 3 -type f \( -name record.json -o -name spec.json -o -name worker.log \
        -o -name transfer.txt -o -name 'report.*' -o -name args.yaml \) -print0 |
        tar czf "$OUT/$PHASE.tgz" --null -T -)
}

nvidia-smi -L | tee "$OUT/gpus.txt" || echo "no nvidia-smi (DEVICE=$DEVICE)" | tee "$OUT/gpus.txt"
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
tasks)
    # the shipped grids, or shorter copies of them (same methods and seeds, fewer epochs and images)
    grid_copy() {  # grid_copy NAME EPOCHS NUM_TRAIN NUM_VAL -> path of a shortened copy
        python3 - "$@" <<'PY'
import sys, yaml
from scsa_yolo.bench.grid import grid_file
name, epochs, num_train, num_val = sys.argv[1], *map(int, sys.argv[2:])
grid = yaml.safe_load(open(grid_file(name)))
grid.update(epochs=epochs, synthetic={**grid.get("synthetic", {}), "num_train": num_train, "num_val": num_val})
grid["description"] = f"{grid['description']} (short: {epochs} epochs, {num_train}/{num_val} images)"
out = f"{name}-short.yaml"
yaml.safe_dump(grid, open(out, "w"), sort_keys=False)
print(out)
PY
    }
    tasks=${TASKS:-segment classify}
    for task in $tasks; do
        case $task in segment | classify) ;; *) echo "unknown TASKS entry '$task' (segment, classify)" >&2; exit 2 ;; esac
    done
    wants() { case " $tasks " in *" $1 "*) return 0 ;; *) return 1 ;; esac; }
    wants segment || wants classify || { echo "TASKS='$tasks' names no grid (segment, classify)" >&2; exit 2; }
    seg_grid=table6-synthetic cls_grid=table2-synthetic-cls
    if [ "${TASK_SCALE:-short}" = short ]; then
        seg_grid=$(cd "$WORK" && grid_copy table6-synthetic "${SEG_EPOCHS:-10}" "${SEG_TRAIN:-800}" "${SEG_VAL:-200}")
        cls_grid=$(cd "$WORK" && grid_copy table2-synthetic-cls "${CLS_EPOCHS:-20}" "${CLS_TRAIN:-800}" "${CLS_VAL:-200}")
        seg_grid="$WORK/$seg_grid" cls_grid="$WORK/$cls_grid"
        cp "$seg_grid" "$cls_grid" "$OUT/"
    fi
    seg_slots=${SEG_SLOTS:-$((SLOTS * 5 / 8))}
    wants classify || seg_slots=$SLOTS
    wants segment || seg_slots=0
    ran=()
    if wants segment; then
        run segment timeout "$LIMIT" scsa-yolo bench --grid "$seg_grid" --devices "$(slots "$seg_slots")" \
            --out "$WORK/segment" ${BENCH_ARGS:-} &
        ran+=(segment)
    fi
    if wants classify; then
        run classify timeout "$LIMIT" scsa-yolo bench --grid "$cls_grid" --devices "$(slots $((SLOTS - seg_slots)))" \
            --out "$WORK/classify" ${BENCH_ARGS:-} &
        ran+=(classify)
    fi
    wait
    pack "${ran[@]}"
    ;;
*)
    echo "unknown PHASE=$PHASE (placement, extend, finetune or tasks)" >&2
    exit 2
    ;;
esac
