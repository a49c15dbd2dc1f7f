set -u
source .k28/gpu/prelude.sh || exit 1
T0=$SECONDS
O=$OUT/c28; mkdir -p $O; TIMES=$O/wall_times.txt; source benchmarks/timed_run.sh
du -sh /tmp/torchinductor_root ~/.triton 2>/dev/null > $O/inductor_cache.txt
run compiled_train timeout 400 python3 benchmarks/yolo_e2e.py --out $O/e2e --compile --what train --models yolov8n,yolov8s,yolo11n --rounds 5 --tag _compile_train_h100
(cd $OUT && tar czf call28c.tgz c28 && rm -rf c28)
L=$((550 - (SECONDS - T0)))
echo "evidence LIMIT=$L"
[ $L -gt 120 ] && PHASE=evidence OUT=$OUT LIMIT=$L MIN_STAGE_S=400 bash benchmarks/gpu_grids.sh 2>&1 | tail -15
ls -la $OUT
