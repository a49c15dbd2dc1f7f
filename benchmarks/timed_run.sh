# Sourced by the GPU scripts: `run NAME CMD...` runs one command with its output in
# $OUT/NAME.log and appends its exit code and wall seconds to $TIMES (and the console).
run() {
    local name=$1 start=$SECONDS rc
    shift
    "$@" > "$OUT/$name.log" 2>&1
    rc=$?
    echo "$name rc=$rc wall_s=$((SECONDS - start)) cmd=$*" | tee -a "$TIMES"
}
