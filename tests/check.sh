#!/usr/bin/env bash
# make check: every tier, in three phases so that the two cores are used and
# the waits of one tier overlap the work of another. Tiers that run at the
# same time share no port (all listen on port 0 or on a pipe) and no
# directory (each has its own temporary spool; the g++ tiers use build/, the
# clang ones build-fuzz/).
#   1. the g++ build (-j2)
#   2. the g++ tiers one after another (unit, in-process transcripts,
#      transcripts, cli, crash, e2e, integration, man lint, valgrind), while
#      clang builds the fuzz targets and the ASan tree (-j2): most g++ tiers
#      wait on processes and timers, and the clang build takes the idle core
#   3. the ASan tiers, while the fuzz targets run
# Each tier's output is in build/check/NAME.log, shown when it ends; the
# times are listed at the end (build/check/times). Exit status 1 when a tier
# failed, after the others have run.
set -u
cd "$(dirname "$0")/.."
MAKE=${MAKE:-make}
LOGS=build/check
mkdir -p "$LOGS"
: >"$LOGS/times"
: >"$LOGS/failed"
started=$(date +%s%N)

# seconds since $1 (date +%s%N), to a tenth
since() {
    local ms=$((($(date +%s%N) - $1) / 1000000))
    printf '%d.%d' $((ms / 1000)) $((ms % 1000 / 100))
}

# tier NAME COMMAND...: runs the command, its output to NAME.log, then shows
# it (whole, one tier at a time) and records the time and the result.
tier() {
    local name=$1
    shift
    local t0 took rc
    t0=$(date +%s%N)
    "$@" >"$LOGS/$name.log" 2>&1
    rc=$?
    took=$(since "$t0")
    {
        flock 9
        echo "=== $name: $* ($took s, $([ $rc = 0 ] && echo ok || echo "FAILED, exit $rc"))"
        cat "$LOGS/$name.log"
        printf '%-14s %7s s  %s\n' "$name" "$took" "$([ $rc = 0 ] && echo ok || echo FAILED)" >>"$LOGS/times"
        [ $rc = 0 ] || echo "$name" >>"$LOGS/failed"
    } 9>>"$LOGS/.lock"
    return $rc
}

tier build-gcc $MAKE -j2 all build/unit-tests build/run-transcripts || {
    cat "$LOGS/times"
    exit 1
}

# Phase 2.
tier build-clang $MAKE -j2 fuzz-build asan-build &
clang=$!
for t in unit transcripts sessions cli crash e2e integration lint-man; do
    tier "$t" $MAKE "$t"
done
tier valgrind $MAKE valgrind VALGRIND_TRANSCRIPTS="$VALGRIND_CHECK_TRANSCRIPTS"
wait $clang || true

# Phase 3 (the ASan and fuzz tiers need the clang build).
if ! grep -qx build-clang "$LOGS/failed"; then
    tier fuzz $MAKE fuzz FUZZ_SECONDS=4 &
    fuzz=$!
    tier asan $MAKE asan
    wait $fuzz || true
fi

echo
echo "make check, tier times (phases 2 and 3 run tiers side by side):"
cat "$LOGS/times"
printf '%-14s %7s s\n' "total" "$(since "$started")"
if [ -s "$LOGS/failed" ]; then
    echo "FAILED: $(tr '\n' ' ' <"$LOGS/failed")"
    exit 1
fi
echo "make check: all tiers passed"
