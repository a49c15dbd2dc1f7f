# Sourced by the GPU scripts: `run NAME CMD...` runs one command with its output in
# $LOGS/NAME.log ($OUT/NAME.log when LOGS is unset), appends its exit code and wall seconds to
# $TIMES (and the console), and returns the command's exit code.
run() {
    local name=$1 start=$SECONDS rc
    shift
    "$@" > "${LOGS:-$OUT}/$name.log" 2>&1
    rc=$?
    echo "$name rc=$rc wall_s=$((SECONDS - start)) cmd=$*" | tee -a "$TIMES"
    return $rc
}
