# call 5 (warm machine after call 4)
timeout 150 python3 benchmarks/yolo_e2e.py --out $OUT --compile --what train --models yolov8s --rounds 5 --tag _compile_train_yolov8s_h100 > $OUT/ct_yolov8s.log 2>&1
# rc=0 wall=31 s
