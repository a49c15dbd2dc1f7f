# call 4 (warm machine after call 3; prelude.sh sourced first, COMMIT=c3f16b2)
for B in yolo11n yolov8n; do timeout 215 python3 benchmarks/yolo_e2e.py --out $OUT --compile --what train --models $B --rounds 5 --tag _compile_train_${B}_h100 > $OUT/ct_$B.log 2>&1; done
# yolo11n rc=0 wall=170 s; yolov8n rc=0 wall=28 s
