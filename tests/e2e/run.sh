#!/bin/bash
# run.sh BINARY: the end-to-end tier. Runs every tests/e2e/t-*.sh against
# BINARY and prints one PASS, FAIL or SKIP line per test, then
# "N passed, M failed" (and the skips, which are never counted as passes).
# Exits 1 when any test failed (or none passed), 2 on a usage error.
#
# Each test runs in its own process group with a time limit; processes a test
# leaves behind are killed and make it fail. The output of a failed test is
# shown; KEEP_E2E_TMP=1 keeps the temporary directories, E2E_VERBOSE=1 shows
# the output of every test. Arguments after BINARY select tests by name
# (e.g. `run.sh build/smtpspool t-30`). E2E_TESTS_DIR runs the t-*.sh of
# another directory (tests/integration) the same way.

set -uo pipefail

if [[ $# -lt 1 ]]; then
    echo "usage: $0 BINARY [TEST-NAME-PREFIX...]" >&2
    exit 2
fi
if [[ ! -x "$1" ]]; then
    echo "$0: not an executable: $1" >&2
    exit 2
fi
binary=$(cd "$(dirname "$1")" && pwd)/$(basename "$1")
shift
E2E_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
TESTS_DIR=${E2E_TESTS_DIR:-$E2E_DIR}
TEST_TIMEOUT=${E2E_TEST_TIMEOUT:-60}

work=$(mktemp -d "${TMPDIR:-/tmp}/smtpspool-e2e-run.XXXXXX")
current= # the process group of the running test
trap 'rm -rf "$work"' EXIT
# Interrupted: the running test (in its own session, so it did not get the
# signal) and everything it started go too.
on_signal()
{
    if [[ -n "$current" ]]; then
        kill -TERM -- "-$current" 2>/dev/null
        sleep 1
        kill -KILL -- "-$current" 2>/dev/null
    fi
    exit 130
}
trap on_signal INT TERM

# The tests run a copy: a rebuild of BINARY while they run (make in another
# shell) must not hand a half-written file to tcpserver.
cp "$binary" "$work/smtpspool"
SMTPSPOOL_BIN=$work/smtpspool
export SMTPSPOOL_BIN
echo "tests in $TESTS_DIR of $binary ($("$SMTPSPOOL_BIN" --version))"

selected()
{
    local name=$1 p
    ((${#PATTERNS[@]} == 0)) && return 0
    for p in "${PATTERNS[@]}"; do
        [[ "$name" == "$p"* ]] && return 0
    done
    return 1
}
PATTERNS=("$@")

# Processes still in the process group GROUP (the test's, as setsid made it).
group_members()
{
    pgrep -g "$1" 2>/dev/null || true
}

passed=0
failed=0
skipped=0
failed_names=()
start_all=$SECONDS

for test in "$TESTS_DIR"/t-*.sh; do
    name=$(basename "$test" .sh)
    selected "$name" || continue
    log="$work/$name.log"
    skips="$work/$name.skips"
    : >"$skips"
    t0=$EPOCHREALTIME
    # setsid: the test leads a new process group, so everything it starts can
    # be found (and killed) afterwards. Not being a group leader here, setsid
    # does not fork, so $! is the test's pid and the group's id.
    E2E_SKIPS="$skips" setsid bash "$test" </dev/null >"$log" 2>&1 &
    pid=$!
    current=$pid
    timed_out=
    deadline=$((SECONDS + TEST_TIMEOUT))
    while kill -0 "$pid" 2>/dev/null; do
        if ((SECONDS >= deadline)); then
            timed_out=yes
            kill -TERM -- "-$pid" 2>/dev/null
            sleep 2
            kill -KILL -- "-$pid" 2>/dev/null
            break
        fi
        sleep 0.05
    done
    wait "$pid"
    status=$?
    current=
    elapsed=$(awk -v a="$t0" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.1f", b - a }')
    leftovers=$(group_members "$pid")
    if [[ -n "$leftovers" ]]; then
        {
            echo "processes left running by the test:"
            ps -o pid=,args= -p "$(echo "$leftovers" | paste -sd, -)" 2>/dev/null || true
        } >>"$log"
        kill -KILL -- "-$pid" 2>/dev/null
    fi
    if [[ -n "$timed_out" ]]; then
        echo "FAIL $name (timed out after ${TEST_TIMEOUT}s)"
        status=124
    elif [[ $status -eq 77 && -s "$skips" ]]; then
        # Only skip_test (a missing tool) may end a test with 77.
        echo "SKIP $name: $(sed "s/^$name: //" "$skips" | head -1)"
        skipped=$((skipped + 1))
    elif [[ $status -eq 77 ]]; then
        echo "FAIL $name (${elapsed}s): exit status 77 without a reason from skip_test"
        status=1
    elif [[ $status -eq 0 && -z "$leftovers" ]]; then
        echo "PASS $name (${elapsed}s)"
        passed=$((passed + 1))
    elif [[ $status -eq 0 ]]; then
        echo "FAIL $name (${elapsed}s): left processes running"
        status=1
    else
        echo "FAIL $name (${elapsed}s, exit status $status)"
    fi
    if [[ $status -ne 0 && $status -ne 77 ]]; then
        failed=$((failed + 1))
        failed_names+=("$name")
        sed 's/^/    | /' "$log"
    elif [[ -n "${E2E_VERBOSE:-}" ]]; then
        sed 's/^/    | /' "$log"
    fi
    # Parts of a passing test that could not run are reported on their own.
    if [[ $status -ne 77 ]]; then
        while IFS= read -r line; do
            [[ -n "$line" ]] || continue
            echo "SKIP $line"
            skipped=$((skipped + 1))
        done <"$skips"
    fi
done

summary="$passed passed, $failed failed"
if ((skipped > 0)); then
    summary+=" ($skipped skipped, not counted as passed)"
fi
echo "$summary in $((SECONDS - start_all))s"
if ((failed > 0)); then
    echo "failed: ${failed_names[*]}"
    exit 1
fi
if ((passed == 0)); then
    echo "no test passed" >&2
    exit 1
fi
exit 0
