# session 13 call A (issue 28): par-compile (.k28/pc) vs main cold start + warm-up, its parity, compiled 11n per-kernel profile (main)
set -u
export PYTHONUNBUFFERED=1 YOLO_OFFLINE=1
O=/tmp/o13a; mkdir -p $O; TIMES=$O/wall_times.txt; source benchmarks/timed_run.sh
nvidia-smi --query-gpu=name,uuid,driver_version,clocks.max.sm --format=csv > $O/gpus.txt; nproc >> $O/gpus.txt
PIP="python3 -m pip install --no-deps --no-index --quiet --no-compile"
run install_deps $PIP --target /tmp/deps .k28/wheels/*.whl
run install_pc $PIP --no-build-isolation --target /tmp/site .k28/pc
run install_main $PIP --no-build-isolation --target /tmp/site_old .
cd .k28/pc
run cold_start env PYTHONPATH=/tmp/site:/tmp/deps PATH=/tmp/site/bin:$PATH timeout 300 python3 benchmarks/yolo_cold_start.py \
    --work /tmp/cold --out $O/cold --old-site /tmp/site_old --warmup-jobs 8 --warm-repeats 2
run pc_parity env PYTHONPATH=/tmp/site:/tmp/deps timeout 60 python3 benchmarks/scsa_size_buckets.py parity --out $O/pcparity --jobs 8
cd ../..
run e2e_compile_infer_11n env PYTHONPATH=/tmp/site_old:/tmp/deps timeout $((560 - SECONDS)) python3 benchmarks/yolo_e2e.py --out $O/e2e --compile --what infer --models yolo11n --rounds 3 --kernels 25 --tag _compile_infer_11n
cp $O/wall_times.txt $OUT/; (cd $O && tar czf $OUT/call13a.tgz .); ls -la $OUT
