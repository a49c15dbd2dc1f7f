# sourced from the repo root on the device machine: wheels + this tree into /tmp/site once per machine
export PYTHONUNBUFFERED=1 YOLO_OFFLINE=1 SCSA_YOLO_GIT_COMMIT=${COMMIT:?}
if [ ! -x /tmp/site/bin/scsa-yolo ] || [ "$(cat /tmp/site/.commit 2>/dev/null)" != "$COMMIT" ]; then
    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .k28/wheels/*.whl || exit 1
    python3 -m pip install -q --no-index --no-deps --no-build-isolation --no-cache-dir --upgrade --target /tmp/site . || exit 1
    echo "$COMMIT" > /tmp/site/.commit
fi
export PYTHONPATH=/tmp/site PATH=/tmp/site/bin:$PATH
which scsa-yolo yolo; nvidia-smi -L; python3 -c "import torch, ultralytics; print(torch.__version__, ultralytics.__version__)"
