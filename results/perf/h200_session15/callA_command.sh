# session 15 call A (issue 28): small-map path on the GPU (parity, paths at batch 32/16/8/1), eager YOLO inference with it (fold + small maps)
set -u
export PYTHONUNBUFFERED=1 YOLO_OFFLINE=1 SCSA_YOLO_GIT_COMMIT=${COMMIT:?}
O=/tmp/o15a; mkdir -p $O; TIMES=$O/wall_times.txt; LOGS=$O; source benchmarks/timed_run.sh
nvidia-smi --query-gpu=name,uuid,driver_version,clocks.max.sm --format=csv > $O/gpus.txt; nproc >> $O/gpus.txt; echo "commit $COMMIT" >> $O/gpus.txt
PIP="python3 -m pip install --no-deps --no-index --quiet --no-compile"
[ -d /tmp/deps ] || run install_deps $PIP --target /tmp/deps .k28/wheels/*.whl
rm -rf /tmp/site; run install_main $PIP --no-build-isolation --target /tmp/site .
export PYTHONSAFEPATH=1
S="env PYTHONPATH=/tmp/site:/tmp/deps PATH=/tmp/site/bin:$PATH"
run small_parity $S timeout 170 python3 benchmarks/scsa_size_buckets.py small-parity --out $O/sm --jobs 8
run paths $S timeout 240 python3 benchmarks/scsa_size_buckets.py paths --out $O/sm --rounds 7 --jobs 12 --batches 32 16 8 1
run e2e_eager $S timeout $((570 - SECONDS)) python3 benchmarks/yolo_e2e.py --out $O/e2e --what infer --models yolov8n,yolov8s,yolo11n --rounds 7 --host 15 --tag _s15
[ $((560 - SECONDS)) -gt 125 ] && run e2e_compile_host_11n $S timeout $((570 - SECONDS)) python3 benchmarks/yolo_e2e.py --out $O/e2e --compile --what infer --models yolo11n --rounds 3 --host 25 --tag _compile_host_11n_s15
cp $O/wall_times.txt $OUT/; (cd $O && tar czf $OUT/call15a.tgz .); ls -la $OUT
