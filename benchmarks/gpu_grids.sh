#!/usr/bin/env bash
# GPU evidence for the placement, pretrained-weights, task and evidence issues, on one lent GPU,
# phase by phase (each call fits the device tool's 10-minute limit; what a call leaves comes back
# as $OUT/*).
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
#   PHASE=evidence: issue 30's evidence grid (table4-evidence, 195 runs, about 75 GPU-minutes at
#       30 epochs), over as many calls as it takes, each going on from what the earlier calls
#       brought back and was committed (results/evidence, or $CARRIED). Stages, each skipped when done:
#       (a) the pretrained start, at one fixed path ($WORK/pretrain-plain.pt, which every run's
#           spec.json names): $PRETRAINED, else $CARRIED/pretrain-plain.pt, else the grid's own
#           pretraining step (its `pretrain:` block, run once as a grid of one run); copied to
#           $OUT/pretrain-plain.pt. Records made from another checkpoint (their
#           spec.pretrained.sha256) stop the call before anything trains;
#       (b) the plateau grid (table4-evidence-plateau: 6 plain runs, 60 epochs, val every epoch)
#           on top of the finished runs of $CARRIED/plateau/records, unless those already pass
#           the check; PLATEAU_BENCH_ARGS go to its bench only (e.g. "--data synthetic-tiny" to
#           train a third of it in a call, should 6 runs not fit one: the check wants every run);
#       (b2) with PLATEAU_LONG=N (or runs of it brought back in $CARRIED/plateau-long/records), the
#           same plain runs at N epochs in plateau-long/records, for the check across schedules;
#       (c) `scsa-yolo plateau --grid` on its runs (plateau/plateau.txt): the largest plateau
#           epoch, rounded up to 5, becomes the epochs of a copy of table4-evidence
#           (table4-evidence.yaml). A run still rising stops the call there. Under Ultralytics'
#           decaying schedule every run climbs to its last epoch (results/evidence/README.md), so
#           with plateau-long runs the check is `scsa-yolo plateau --across-schedules` instead: the
#           shortest length the longer one beats by at most 0.5 AP on every dataset (SCHEDULE_ARGS
#           are its options);
#       (d) that grid under what is left of LIMIT, on top of the finished runs of
#           $CARRIED/records: only the missing runs train;
#       (e) $OUT/evidence.tgz: records, spec.json, results.csv, worker logs, reports, the grid
#           copies, plateau.txt, the checkpoint's sha256 and this call's logs (logs/<UTC time>/),
#           laid out as results/evidence/ is. $OUT holds 4 files: gpus.txt, wall_times.txt,
#           evidence.tgz, pretrain-plain.pt (the device tool brings back 8 at most).
#       A run that LIMIT cuts keeps its weights/last.pt in $WORK: a call made while the machine is
#       still warm (30 s) resumes it; a fresh machine trains it again (a last.pt with its optimizer
#       is too big to bring back). MIN_STAGE_S (default 30): no bench starts with less of LIMIT
#       left; on a session's last call, 400 keeps the evidence bench from starting runs that
#       cannot finish (30 epochs at the measured 1.3 run-epochs/s of 16 sharing the GPU: about 370 s).
#       The call sequence, from the repository root:
#         1. the device tool's run, scsa-yolo and its wheels installed from .whl as for the other
#            phases: command "... && PHASE=evidence OUT=$OUT bash benchmarks/gpu_grids.sh",
#            carry [".whl", "results/evidence/pretrain-plain.pt"] (absent before the first call);
#         2. here: mkdir -p results/evidence && tar xzf FILES_AT/evidence.tgz -C results/evidence
#            && cp FILES_AT/pretrain-plain.pt results/evidence/   (*.pt is ignored by git: keep the
#            file between sessions; the records name its sha256 and refuse another start);
#         3. git add results/evidence && git commit (a run folder without record.json is an
#            unfinished run: committed or not, the next call trains it again);
#         4. again from 1 until the evidence bench's log (logs/*/evidence.log) reports every run
#            done; then scsa-yolo report results/evidence/records --style table4 --format all
#            --out results/evidence/table4 (and --style gates).
#       Knobs for a rehearsal (tests/test_gpu_grids_script.py): GRID_SET, PLATEAU_SET,
#       EVIDENCE_SET (YAML mappings merged into every grid copy / the plateau grid / the evidence
#       grid, e.g. '{imgsz: 32, seeds: [0]}'), PLATEAU_ARGS (options of `scsa-yolo plateau`).
#
# Wall times go to $OUT/wall_times.txt; records, logs and reports come back as one tarball.
# Usage: PHASE=placement OUT=runs/gpu bash benchmarks/gpu_grids.sh   (needs scsa-yolo on PATH)
set -u
# The Python snippets below (`python3 -`, `python3 -c`) would put the current folder first on
# sys.path: run from a source checkout with scsa-yolo installed by `pip --target` (the GPU
# machine: PYTHONPATH, so no .pth autoload), they imported the checkout's scsa_yolo/, which has
# no shipped grids (scsa_yolo.cfg), and the evidence phase trained the default grid instead.
export PYTHONSAFEPATH=1  # Python 3.11+: no current folder on sys.path
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
case "${PHASE:?set PHASE=placement, extend, finetune, tasks or evidence}" in
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
evidence)
    CARRIED=${CARRIED:-$(cd "$(dirname "$0")/.." && pwd)/results/evidence}
    EV="$WORK/evidence"  # laid out as results/evidence: what a call packs and the next one seeds from
    START="$WORK/pretrain-plain.pt"  # one path for every call: the runs' spec.json name it
    DEADLINE=$((SECONDS + LIMIT))
    LOGS="$EV/logs/$(date -u +%Y%m%dT%H%M%SZ)"
    mkdir -p "$LOGS" "$EV/pretrain" "$EV/plateau/records" "$EV/plateau-long/records" "$EV/records"
    TIMES="$LOGS/wall_times.txt"
    left() { echo $((DEADLINE - SECONDS)); }
    time_for() {  # time_for STAGE: whether a bench may still start (timeout 0 would mean no limit)
        [ "$(left)" -ge "${MIN_STAGE_S:-30}" ] && return 0
        echo "$1: not started, $(left) s of LIMIT left" | tee -a "$TIMES"
        return 1
    }
    evidence_grid() {  # evidence_grid pretrain|plateau|evidence [EPOCHS] -> path of the grid copy
        python3 - "$EV" "$@" <<'PY'
import os, sys, yaml
from scsa_yolo.bench.grid import grid_file, load_grid

ev, which, epochs = sys.argv[1], sys.argv[2], sys.argv[3:]

def merged(base, changes):
    out = dict(base)
    for key, value in changes.items():
        out[key] = merged(out[key], value) if isinstance(value, dict) and isinstance(out.get(key), dict) else value
    return out

def shipped(name, *knobs, **changes):
    grid = yaml.safe_load(open(grid_file(name)))
    for knob in ("GRID_SET", *knobs):
        grid = merged(grid, yaml.safe_load(os.environ.get(knob) or "{}") or {})
    return merged(grid, changes)

evidence = shipped("table4-evidence", "EVIDENCE_SET")
if which == "pretrain":  # the grid's pretraining step (Grid.pretrain_runs: its settings) as a grid of its own
    merged_path = f"{ev}/pretrain/table4-evidence-merged.yaml"
    yaml.safe_dump(evidence, open(merged_path, "w"), sort_keys=False)
    step = load_grid(merged_path).pretrain_runs()[0]
    data = evidence["pretrain"]["data"]
    grid = {"description": f"the pretraining step of table4-evidence: the plain model on {data}",
            "datasets": [data], "models": evidence["models"], "attns": ["none"], "seeds": [step.seed],
            "epochs": step.epochs, "imgsz": step.imgsz, "batch": step.batch, "train_args": step.train_args,
            "synthetic": evidence.get("synthetic", {}), "report": "table4"}
    path = f"{ev}/pretrain/table4-evidence-pretrain.yaml"
elif which == "plateau":
    grid, path = shipped("table4-evidence-plateau", "PLATEAU_SET"), f"{ev}/plateau/table4-evidence-plateau.yaml"
else:
    grid = merged(evidence, {"epochs": int(epochs[0])})
    grid["description"] += f" ({epochs[0]} epochs: the plateau check, plateau/plateau.txt)"
    path = f"{ev}/table4-evidence.yaml"
yaml.safe_dump(grid, open(path, "w"), sort_keys=False)
print(path)
PY
    }
    seed_runs() {  # seed_runs FROM TO: copy the finished runs (folders with a record.json) that TO lacks
        [ -d "$1" ] || return 0
        local record dir n=0
        while IFS= read -r -d '' record; do
            dir=$(dirname "$record")
            [ -f "$2/$dir/record.json" ] && continue
            mkdir -p "$2/$dir" && cp -r "$1/$dir/." "$2/$dir/" && n=$((n + 1))
        done < <(cd "$1" && find . -name record.json -printf '%P\0')
        echo "seeded $n finished run(s) from $1" | tee -a "$TIMES"
    }
    same_start() {  # same_start: the sha256 of $START, or an error naming the records of another start
        python3 - "$START" "$EV" <<'PY'
import hashlib, json, sys
from pathlib import Path

start, ev = sys.argv[1], Path(sys.argv[2])
sha = hashlib.sha256(Path(start).read_bytes()).hexdigest()
others = {}
for record in sorted(ev.rglob("record.json")):
    pretrained = json.loads(record.read_text())["spec"].get("pretrained")
    if pretrained and pretrained["sha256"] != sha:
        others.setdefault(pretrained["sha256"], []).append(str(record.relative_to(ev)))
for other, records in others.items():
    print(f"{len(records)} record(s) started from checkpoint sha256 {other}, not from {start} (sha256 {sha}), e.g. "
          f"{records[0]}: carry the checkpoint they started from (results/evidence/pretrain-plain.pt), or move "
          "them away to start the grid again", file=sys.stderr)
if others:
    sys.exit(1)
print(sha)
PY
    }
    stages() {  # (a) to (d); non-zero: the stage that stopped the call failed or ran out of LIMIT
        seed_runs "$CARRIED/plateau/records" "$EV/plateau/records"
        seed_runs "$CARRIED/plateau-long/records" "$EV/plateau-long/records"
        seed_runs "$CARRIED/records" "$EV/records"
        # (a) the pretrained start
        if [ -n "${PRETRAINED:-}" ]; then
            cp "$PRETRAINED" "$START" || return
        elif [ -f "$CARRIED/pretrain-plain.pt" ]; then
            cp "$CARRIED/pretrain-plain.pt" "$START" || return
        elif [ ! -f "$START" ]; then  # a warm machine keeps it
            if [ -n "$(find "$EV/plateau/records" "$EV/records" -name record.json -print -quit)" ]; then
                echo "records were seeded but no checkpoint: carry results/evidence/pretrain-plain.pt" | tee -a "$TIMES"
                return 1
            fi
            pretrain_grid=$(evidence_grid pretrain) || return  # not inside run's arguments: a failure must stop here
            time_for pretrain || return
            run pretrain timeout "$(left)" scsa-yolo bench --grid "$pretrain_grid" --devices "$DEVICE" \
                --out "$EV/pretrain/records" ${BENCH_ARGS:-} || return
            mapfile -t records < <(find "$EV/pretrain/records" -name record.json)
            if [ ${#records[@]} != 1 ]; then  # the pretraining grid is one run: anything else is not its start
                echo "pretrain: ${#records[@]} records in $EV/pretrain/records, expected the one plain run" | tee -a "$TIMES"
                return 1
            fi
            cp "$(dirname "${records[0]}")/weights/last.pt" "$START" || return
        fi
        same_start > "$EV/pretrain/pretrain-plain.sha256" 2> "$LOGS/same_start.log" || {
            tee -a "$TIMES" < "$LOGS/same_start.log"; return 1; }
        cp "$START" "$OUT/pretrain-plain.pt"
        # (b) the plateau grid, unless its runs already pass the check; (c) the epochs
        plateau_grid=$(evidence_grid plateau) || return
        across() {  # whether the check compares schedule lengths (PLATEAU_LONG, or long runs brought back)
            [ -n "${PLATEAU_LONG:-}" ] || [ -n "$(find "$EV/plateau-long/records" -name record.json -print -quit)" ]
        }
        check_plateau() {
            if across; then  # under a decaying schedule AP climbs to the last epoch: compare lengths instead
                scsa-yolo plateau --across-schedules "$EV/plateau/records" "$EV/plateau-long/records" ${SCHEDULE_ARGS:-}
            else
                scsa-yolo plateau "$EV/plateau/records" --grid "$plateau_grid" ${PLATEAU_ARGS:-}
            fi
        }
        if ! check_plateau > "$EV/plateau/plateau.txt" 2>&1; then
            time_for plateau || return
            run plateau timeout "$(left)" scsa-yolo bench --grid "$plateau_grid" --pretrained "$START" \
                --devices "$(slots "$SLOTS")" --out "$EV/plateau/records" ${BENCH_ARGS:-} ${PLATEAU_BENCH_ARGS:-}
            if [ -n "${PLATEAU_LONG:-}" ]; then  # (b2) the same runs at PLATEAU_LONG epochs
                time_for plateau_long || return
                run plateau_long timeout "$(left)" scsa-yolo bench --grid "$plateau_grid" --epochs "$PLATEAU_LONG" \
                    --pretrained "$START" --devices "$(slots "$SLOTS")" --out "$EV/plateau-long/records" \
                    ${BENCH_ARGS:-} ${PLATEAU_BENCH_ARGS:-}
            fi
            run plateau_check check_plateau
            rc=$?
            cp "$LOGS/plateau_check.log" "$EV/plateau/plateau.txt"
            [ $rc = 0 ] || return $rc
        fi
        epochs=$(sed -n 's/^epochs: \([0-9][0-9]*\)$/\1/p' "$EV/plateau/plateau.txt")
        echo "plateau check: epochs $epochs (plateau/plateau.txt)" | tee -a "$TIMES"
        evidence_grid=$(evidence_grid evidence "$epochs") || return
        # (d) the evidence grid on top of the finished runs
        time_for evidence || return
        run evidence timeout "$(left)" scsa-yolo bench --grid "$evidence_grid" --pretrained "$START" \
            --devices "$(slots "$SLOTS")" --out "$EV/records" ${BENCH_ARGS:-}
    }
    stages
    echo "evidence phase: stopped with rc=$? after $SECONDS s (LIMIT $LIMIT)" | tee -a "$TIMES"
    cp "$TIMES" "$OUT/wall_times.txt"
    # (e) everything a later call or the report needs, no weights (the checkpoint comes back beside it)
    (cd "$EV" && find . -type f \( -name record.json -o -name spec.json -o -name results.csv -o -name '*.log' \
        -o -name '*.txt' -o -name '*.yaml' -o -name 'report.*' -o -name '*.sha256' \) -printf '%P\0' |
        tar czf "$OUT/evidence.tgz" --null -T -)
    ;;
*)
    echo "unknown PHASE=$PHASE (placement, extend, finetune, tasks or evidence)" >&2
    exit 2
    ;;
esac
