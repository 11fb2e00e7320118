# lib.sh: shared helpers for the end-to-end tests (sourced by tests/e2e/t-*.sh).
#
# A test is a bash script run as `bash t-NN-name.sh` with SMTPSPOOL_BIN set by
# run.sh (or given as $1 when a test is run by hand). It exits 0 when it passes,
# 1 when it fails, 77 when it cannot run because a tool is missing (skip_test).
# A test that skips only a part of itself calls skip_part; run.sh lists those
# skips separately and never counts them as passes.
#
# Every test gets its own temporary directory ($TEST_TMP), removed on exit;
# the background processes it starts with start_bg are killed on exit, with
# their children (smtpspool processes under tcpserver and the like).
# Only 127.0.0.1 and ports above 20000 are used.

set -Eeuo pipefail

E2E_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck disable=SC2034 # used by the tests
REPO_ROOT=$(cd "$E2E_DIR/../.." && pwd)
TEST_NAME=$(basename "$0" .sh)

if [[ -z "${SMTPSPOOL_BIN:-}" && -n "${1:-}" ]]; then
    SMTPSPOOL_BIN=$1
fi
if [[ -z "${SMTPSPOOL_BIN:-}" ]]; then
    echo "usage: $0 BINARY (or SMTPSPOOL_BIN=BINARY)" >&2
    exit 2
fi
SMTPSPOOL_BIN=$(cd "$(dirname "$SMTPSPOOL_BIN")" && pwd)/$(basename "$SMTPSPOOL_BIN")
if [[ ! -x "$SMTPSPOOL_BIN" ]]; then
    echo "not an executable: $SMTPSPOOL_BIN" >&2
    exit 2
fi
export SMTPSPOOL_BIN
export PYTHONPATH="$E2E_DIR${PYTHONPATH:+:$PYTHONPATH}"
export PYTHONDONTWRITEBYTECODE=1

TEST_TMP=$(mktemp -d "${TMPDIR:-/tmp}/smtpspool-e2e-$TEST_NAME.XXXXXX")
export TEST_TMP
# When run.sh runs the test, skipped parts are recorded here.
E2E_SKIPS=${E2E_SKIPS:-$TEST_TMP/skips}

BG_PIDS=()

# Kills one background process and the children it started; the children are
# looked up (by parent pid) before the parent goes, while they are still its.
kill_tree()
{
    local pid=$1 children
    children=$(pgrep -P "$pid" 2>/dev/null || true)
    kill -TERM "$pid" 2>/dev/null || true
    local c
    for c in $children; do
        kill_tree "$c"
    done
    # Reap it if it is ours; give it a moment, then insist.
    local _
    for _ in 1 2 3 4 5 6 7 8 9 10; do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
}

cleanup()
{
    local status=$?
    trap - EXIT INT TERM
    set +e
    local pid
    for pid in "${BG_PIDS[@]}"; do
        kill_tree "$pid"
    done
    if [[ -n "${KEEP_E2E_TMP:-}" ]]; then
        echo "kept $TEST_TMP"
    else
        rm -rf "$TEST_TMP"
    fi
    exit "$status"
}
trap cleanup EXIT
trap 'exit 143' TERM
trap 'exit 130' INT
# Says which command failed when errexit ends the test (not under `set +e`).
# shellcheck disable=SC2154 # _e2e_err is set inside the trap
trap '_e2e_err=$?; [[ $- == *e* ]] && echo "error: ${BASH_SOURCE[0]}:$LINENO: \`$BASH_COMMAND\` exited with status $_e2e_err" >&2' ERR

# ---- outcomes -------------------------------------------------------------

fail()
{
    echo "FAIL: $*" >&2
    exit 1
}

# skip_test REASON: the whole test cannot run (a tool is missing).
skip_test()
{
    echo "SKIP: $*"
    echo "$TEST_NAME: $*" >>"$E2E_SKIPS"
    exit 77
}

# skip_part PART REASON: one part of the test cannot run; the rest goes on.
skip_part()
{
    local part=$1
    shift
    echo "SKIP (part): $part: $*"
    echo "$TEST_NAME/$part: $*" >>"$E2E_SKIPS"
}

# need_tool NAME...: skip the test unless every tool is on PATH.
need_tool()
{
    local t
    for t in "$@"; do
        command -v "$t" >/dev/null 2>&1 || skip_test "$t is not installed (make deps installs it)"
    done
}

step()
{
    echo "--- $*"
}

# ---- assertions: each prints what was expected and what was found ---------

assert_eq()
{
    local expected=$1 found=$2 what=${3:-value}
    if [[ "$expected" != "$found" ]]; then
        fail "$what: expected [$expected], found [$found]"
    fi
}

assert_ne()
{
    local unexpected=$1 found=$2 what=${3:-value}
    if [[ "$unexpected" == "$found" ]]; then
        fail "$what: expected anything but [$unexpected], found it"
    fi
}

# assert_contains HAYSTACK NEEDLE WHAT
assert_contains()
{
    local haystack=$1 needle=$2 what=${3:-text}
    if [[ "$haystack" != *"$needle"* ]]; then
        fail "$what: expected to contain [$needle], found:
$haystack"
    fi
}

assert_not_contains()
{
    local haystack=$1 needle=$2 what=${3:-text}
    if [[ "$haystack" == *"$needle"* ]]; then
        fail "$what: expected not to contain [$needle], found:
$haystack"
    fi
}

# assert_match TEXT ERE WHAT
assert_match()
{
    local text=$1 re=$2 what=${3:-text}
    if ! [[ "$text" =~ $re ]]; then
        fail "$what: expected to match /$re/, found [$text]"
    fi
}

# assert_line FILE LINE: FILE has LINE as a whole line.
assert_line()
{
    local file=$1 line=$2
    grep -qxF -- "$line" "$file" || fail "$file: expected the line [$line], found:
$(grep -v '^#' "$file" | grep -v '^$')"
}

assert_file()
{
    [[ -f "$1" ]] || fail "expected file $1, found in its directory: $(find "$(dirname "$1")" -maxdepth 1 2>&1 | tr '\n' ' ')"
}

# assert_files_equal EXPECTED FOUND WHAT: byte for byte, with a hex excerpt.
assert_files_equal()
{
    local expected=$1 found=$2 what=${3:-file}
    if ! cmp -s "$expected" "$found"; then
        echo "--- expected ($expected):" >&2
        od -c "$expected" | head -20 >&2
        echo "--- found ($found):" >&2
        od -c "$found" | head -20 >&2
        fail "$what: files differ ($(cmp "$expected" "$found" 2>&1 || true))"
    fi
}

# count_entries DIR: the number of entries in DIR (0 when it is missing).
count_entries()
{
    if [[ -d "$1" ]]; then
        find "$1" -mindepth 1 -maxdepth 1 | wc -l | tr -d ' '
    else
        echo 0
    fi
}

# ---- processes and ports --------------------------------------------------

# start_bg LOGFILE COMMAND...: start COMMAND in the background with stdout and
# stderr to LOGFILE; its pid is in $BG_PID and is killed on exit.
start_bg()
{
    local log=$1
    shift
    "$@" </dev/null >"$log" 2>&1 &
    BG_PID=$!
    BG_PIDS+=("$BG_PID")
}

# stop_bg PID: stop one background process (and its children) now.
stop_bg()
{
    local pid=$1 keep=() p
    kill_tree "$pid"
    for p in "${BG_PIDS[@]}"; do
        [[ "$p" == "$pid" ]] || keep+=("$p")
    done
    BG_PIDS=("${keep[@]}")
}

# free_port: a TCP port on 127.0.0.1 that nothing listens on, from 20000-32767
# (below Linux's ephemeral range, so outgoing connections do not take it).
free_port()
{
    python3 - <<'EOF'
import random, socket
for _ in range(200):
    port = random.randint(20000, 32767)
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        s.bind(("127.0.0.1", port))
    except OSError:
        continue
    finally:
        s.close()
    print(port)
    break
else:
    raise SystemExit("no free port found")
EOF
}

# wait_for_port PORT PID LOG [SECONDS]: wait until 127.0.0.1:PORT accepts a
# connection; fail at once if PID (the server) died, showing its LOG.
wait_for_port()
{
    local port=$1 pid=$2 log=$3 seconds=${4:-10}
    local deadline=$((SECONDS + seconds))
    while ((SECONDS <= deadline)); do
        if ! kill -0 "$pid" 2>/dev/null; then
            cat "$log" >&2 || true
            fail "the server (pid $pid) exited before listening on 127.0.0.1:$port"
        fi
        if python3 -c '
import socket, sys
s = socket.socket()
s.settimeout(0.5)
try:
    s.connect(("127.0.0.1", int(sys.argv[1])))
except OSError:
    sys.exit(1)
# Close at once; tcpserver starts a session that ends on EOF.
s.close()
' "$port" 2>/dev/null; then
            return 0
        fi
        sleep 0.1
    done
    cat "$log" >&2 || true
    fail "nothing listens on 127.0.0.1:$port after ${seconds}s"
}

# compile_rules SOURCE CDB: tcprules SOURCE into CDB.
compile_rules()
{
    local src=$1 cdb=$2
    tcprules "$cdb" "$cdb.tmp" <"$src" || fail "tcprules could not compile $src"
}

# start_tcpserver RULES_CDB CONCURRENCY SMTPSPOOL_ARGS...: tcpserver on
# 127.0.0.1 and a free port running the binary; sets PORT and SERVER_PID, logs
# to $TEST_TMP/tcpserver.log. No DNS (-H) or ident (-R) lookups.
start_tcpserver()
{
    local cdb=$1 conc=$2
    shift 2
    need_tool tcpserver
    PORT=$(free_port)
    start_bg "$TEST_TMP/tcpserver.log" \
        tcpserver -v -R -H -l 0 -x "$cdb" -c "$conc" -b 100 127.0.0.1 "$PORT" "$SMTPSPOOL_BIN" "$@"
    SERVER_PID=$BG_PID
    wait_for_port "$PORT" "$SERVER_PID" "$TEST_TMP/tcpserver.log"
}

# make_certificate CERT KEY: a self-signed RSA certificate for mx.test.example
# and its key (PEM), for the TLS tests.
make_certificate()
{
    openssl req -x509 -newkey rsa:2048 -nodes -keyout "$2" -out "$1" -days 2 \
        -subj /CN=mx.test.example >/dev/null 2>&1 || fail "openssl req could not make a certificate"
}

# ---- the spool -------------------------------------------------------------

# mailq_json SPOOL: `smtpspool mailq --json`, checked to exit 0.
mailq_json()
{
    local out
    out=$("$SMTPSPOOL_BIN" mailq --spool "$1" --json) || fail "smtpspool mailq --json --spool $1 exited $?"
    printf '%s' "$out"
}
