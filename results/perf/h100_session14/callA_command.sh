# session 14 call A (issue 28): compiled YOLO11n host profile, the folded residual A/B (eager), the warm-up re-measured
set -u
export PYTHONUNBUFFERED=1 YOLO_OFFLINE=1 SCSA_YOLO_GIT_COMMIT=${COMMIT:?}
O=/tmp/o14a; mkdir -p $O; TIMES=$O/wall_times.txt; source benchmarks/timed_run.sh
nvidia-smi --query-gpu=name,uuid,driver_version,clocks.max.sm --format=csv > $O/gpus.txt; nproc >> $O/gpus.txt
PIP="python3 -m pip install --no-deps --no-index --quiet --no-compile"
run install_deps $PIP --target /tmp/deps .k28/wheels/*.whl
run install_main $PIP --no-build-isolation --target /tmp/site .
export PYTHONSAFEPATH=1
S="env PYTHONPATH=/tmp/site:/tmp/deps PATH=/tmp/site/bin:$PATH"
run e2e_compile_host_11n $S timeout 200 python3 benchmarks/yolo_e2e.py --out $O/e2e --compile --what infer --models yolo11n --rounds 3 --host 25 --tag _compile_host_11n
run e2e_fold $S timeout 200 python3 benchmarks/yolo_e2e.py --out $O/e2e --what infer --models yolov8n,yolov8s,yolo11n --rounds 7 --unfolded --host 15 --tag _fold
run cold_start $S timeout $((575 - SECONDS)) python3 benchmarks/yolo_cold_start.py --work /tmp/cold --out $O/cold --warmup-jobs 8 --warm-repeats 2
cp $O/wall_times.txt $OUT/; (cd $O && tar czf $OUT/call14a.tgz .); ls -la $OUT
