# issue 28, eager side: cold start, k28-host host time + parity, eager inference of 3 bases
set -u
source .k28/gpu/prelude.sh || exit 1
O=$OUT; TIMES=$O/wall_times.txt; source benchmarks/timed_run.sh
nvidia-smi --query-gpu=name,uuid,driver_version,clocks.max.sm --format=csv > $O/gpus.txt
run cold_start timeout 290 python3 benchmarks/yolo_cold_start.py --work /tmp/cold --out $O/cold --warmup-jobs 8 --warm-repeats 1
(cd $O && tar czf cold.tgz cold cold_start.log)
run host_compare timeout 110 python3 benchmarks/scsa_host_profile.py --compare . .k28/k28-host --procs 3 --out $O/host
run k28_parity env PYTHONPATH=$PWD/.k28/k28-host:/tmp/site timeout 60 python3 benchmarks/scsa_size_buckets.py parity --out $O/k28parity --jobs 8
run e2e_infer timeout 100 python3 benchmarks/yolo_e2e.py --out $O/e2e --what infer --models yolov8n,yolov8s,yolo11n --rounds 7 --tag _eager_infer_h100
cd $O && tar czf call28a.tgz --exclude='*.tgz' . ; ls -la $O
