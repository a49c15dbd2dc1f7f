# issue 28, compiled: prewarm Inductor/Triton caches for 3 bases in parallel, then compiled inference timed
set -u
source .k28/gpu/prelude.sh || exit 1
O=$OUT; TIMES=$O/wall_times.txt; source benchmarks/timed_run.sh
nvidia-smi --query-gpu=name,uuid --format=csv > $O/gpus.txt
for B in yolov8n yolov8s yolo11n; do
  ( s=$SECONDS; timeout ${PRE_T:-380} python3 benchmarks/yolo_e2e.py --out $O/pre --compile --what both --models $B --rounds 1 --tag _pre_$B > $O/pre_$B.log 2>&1; echo "pre_$B rc=$? wall_s=$((SECONDS-s))" | tee -a $TIMES ) &
done
wait
run compiled_infer timeout ${INF_T:-150} python3 benchmarks/yolo_e2e.py --out $O/e2e --compile --what infer --models yolov8n,yolov8s,yolo11n --rounds 7 --tag _compile_infer_h100
cd $O && tar czf call28b.tgz --exclude='*.tgz' . ; ls -la $O
