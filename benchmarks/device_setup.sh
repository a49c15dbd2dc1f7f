# Sourced at the start of a command on the lent GPU machine (it has no package index):
#   COMMIT=$(git rev-parse HEAD) source benchmarks/device_setup.sh   # COMMIT given here, at call time
# installs the carried wheels ($WHEELS, default .whl: ultralytics, ultralytics-thop, pycocotools,
# polars for Python 3.12; benchmarks/README.md says how to download them) and this tree into
# /tmp/site once per machine and per commit, and exports what the scripts need: PATH and
# PYTHONPATH to /tmp/site, SCSA_YOLO_GIT_COMMIT (so records name the commit: the copy of the
# tree sent to the machine may lack .git), YOLO_OFFLINE, unbuffered output.
# Lessons it encodes: a later call on the same (warm) machine skips the install; exports only
# persist when this file is sourced in the same command line that runs the work.
export PYTHONUNBUFFERED=1 YOLO_OFFLINE=1 SCSA_YOLO_GIT_COMMIT=${COMMIT:?set COMMIT to the commit being run}
WHEELS=${WHEELS:-.whl}
if [ ! -x /tmp/site/bin/scsa-yolo ] || [ "$(cat /tmp/site/.commit 2>/dev/null)" != "$COMMIT" ]; then
    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site \
        "$WHEELS"/*.whl || return 1
    python3 -m pip install -q --no-index --no-deps --no-build-isolation --no-cache-dir --upgrade \
        --target /tmp/site . || return 1
    echo "$COMMIT" > /tmp/site/.commit
fi
export PYTHONPATH=/tmp/site PATH=/tmp/site/bin:$PATH
nvidia-smi -L 2>/dev/null || echo "no nvidia-smi"
python3 -c "import torch, ultralytics; print('torch', torch.__version__, 'ultralytics', ultralytics.__version__)"
