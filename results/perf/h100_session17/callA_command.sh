# session 17 (issue 28): cold start with compile-ahead vs without (--compare-ahead), then compiled YOLO11n inference primed (one graph)
# carry [".k28/wheels", ".k28/gpu"]
set -u
export PYTHONUNBUFFERED=1 YOLO_OFFLINE=1 SCSA_YOLO_GIT_COMMIT=${COMMIT:?}
O=/tmp/o17a; mkdir -p $O; TIMES=$O/wall_times.txt; LOGS=$O; source benchmarks/timed_run.sh
nvidia-smi --query-gpu=name,uuid,driver_version --format=csv > $O/gpus.txt; nproc >> $O/gpus.txt; echo "commit $COMMIT" >> $O/gpus.txt
PIP="python3 -m pip install --no-deps --no-index --quiet --no-compile"
[ -d /tmp/deps ] || run install_deps $PIP --target /tmp/deps .k28/wheels/*.whl
rm -rf /tmp/site; run install_main $PIP --no-build-isolation --target /tmp/site .
export PYTHONSAFEPATH=1
S="env PYTHONPATH=/tmp/site:/tmp/deps PATH=/tmp/site/bin:$PATH"
run cold_start $S timeout 390 python3 benchmarks/yolo_cold_start.py --work /tmp/cold --out $O/cold --warmup-jobs 8 --warm-repeats 1 --compare-ahead
(cd $O && tar czf $OUT/call17a_cold.tgz .)
run e2e_primed $S timeout $((580 - SECONDS)) python3 benchmarks/yolo_e2e.py --out $O/e2e --compile --prime --what infer --models yolo11n --rounds 3 --tag _compile_primed_11n
cp $O/wall_times.txt $OUT/; (cd $O && tar czf $OUT/call17a.tgz .); ls -la $OUT
