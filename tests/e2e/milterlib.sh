# milterlib.sh: the content filters of the milter tests (t-67, t-68 and t-69), sourced
# after lib.sh and deliverylib.sh. Each daemon is Debian's own, started in the
# foreground from its example under examples/milters/ with only the test's
# socket, files, ports and name servers put in, on a unix socket in $TEST_TMP
# or a free loopback port; it is stopped when the test ends (start_bg).
#
#   start_opendkim  opendkim (verifying) from opendkim-verify.conf; its keys
#                   from the test's DNS server (start_dns_server first)
#   start_rspamd    rspamd's proxy worker in milter mode from rspamd-milter/
#   start_opendmarc opendmarc from opendmarc.conf, in a network namespace of
#                   its own whose name server is the test's (see there why)
#   dkim_sign       sign a message with dkimpy, as a sending domain would

MILTER_EXAMPLES=$REPO_ROOT/examples/milters
# The name in the Authentication-Results: fields of the tests' daemons and
# smtpspool's --authserv-id.
AUTHSERV_ID=mx.test.example

# need_daemon PATH...: skip the test unless each program is installed.
need_daemon()
{
    local p
    for p in "$@"; do
        [[ -x "$p" ]] || skip_test "$p is not installed (make deps installs it)"
    done
}

# config_from_example EXAMPLE OUT KEY=VALUE...: EXAMPLE (opendkim's or
# opendmarc's "Key value" lines, # comments) with each KEY's line replaced
# by "KEY VALUE", added at the end when EXAMPLE has none, or removed when
# VALUE is empty. Comment lines stay as they are.
config_from_example()
{
    local example=$1 out=$2
    shift 2
    python3 - "$example" "$out" "$@" <<'EOF'
import sys

example, out, pairs = sys.argv[1], sys.argv[2], sys.argv[3:]
changes = dict(p.split("=", 1) for p in pairs)
lines, seen = [], set()
with open(example) as f:
    for line in f:
        words = line.split(None, 1)
        key = words[0] if words and not words[0].startswith("#") else None
        if key in changes:
            seen.add(key)
            if changes[key]:
                lines.append(f"{key} {changes[key]}\n")
            continue
        lines.append(line)
missing = [k for k in changes if k not in seen and changes[k]]
lines += [f"{k} {changes[k]}\n" for k in missing]
with open(out, "w") as f:
    f.writelines(lines)
EOF
}

# wait_for_unix_socket PATH PID LOG: wait until the unix socket PATH accepts a
# connection (at most 10 s); fail at once if PID died, showing its LOG.
wait_for_unix_socket()
{
    local path=$1 pid=$2 log=$3
    local deadline=$((SECONDS + 10))
    while ((SECONDS <= deadline)); do
        if ! kill -0 "$pid" 2>/dev/null; then
            cat "$log" >&2 || true
            fail "the daemon (pid $pid) exited before listening on $path"
        fi
        if python3 -c '
import socket, sys
s = socket.socket(socket.AF_UNIX)
s.settimeout(0.5)
s.connect(sys.argv[1])
s.close()
' "$path" 2>/dev/null; then
            return 0
        fi
        sleep 0.05
    done
    cat "$log" >&2 || true
    fail "nothing listens on $path after 10s"
}

# ---- DKIM keys and signatures ---------------------------------------------

# need_dkimpy: sets DKIMPY_PYTHON to a python3 that can import dkim (Debian's
# python3-dkim), or skips the test.
need_dkimpy()
{
    [[ -n "${DKIMPY_PYTHON:-}" ]] && return 0
    local p
    for p in python3 /usr/bin/python3; do
        if command -v "$p" >/dev/null 2>&1 && "$p" -c 'import dkim' 2>/dev/null; then
            DKIMPY_PYTHON=$(command -v "$p")
            export DKIMPY_PYTHON
            return 0
        fi
    done
    skip_test "dkimpy is not installed (make deps installs python3-dkim)"
}

# make_dkim_key DOMAIN SELECTOR DIR: a new RSA key for SELECTOR._domainkey.DOMAIN
# in DIR/SELECTOR.private (opendkim-genkey); prints the TXT record's text.
make_dkim_key()
{
    local domain=$1 selector=$2 dir=$3
    need_tool opendkim-genkey
    mkdir -p "$dir"
    opendkim-genkey -b 1024 -d "$domain" -s "$selector" -D "$dir" || fail "opendkim-genkey failed"
    # The record's quoted pieces, joined.
    python3 -c 'import re, sys; print("".join(re.findall(r"\"([^\"]*)\"", open(sys.argv[1]).read())))' \
        "$dir/$selector.txt"
}

# dkim_sign KEY DOMAIN SELECTOR < MESSAGE > SIGNED: MESSAGE (CRLF line ends)
# with a DKIM-Signature: field first (dkimpy, relaxed/relaxed, rsa-sha256).
dkim_sign()
{
    need_dkimpy
    "$DKIMPY_PYTHON" -c '
import sys, dkim
key, domain, selector = open(sys.argv[1], "rb").read(), sys.argv[2].encode(), sys.argv[3].encode()
msg = sys.stdin.buffer.read()
sig = dkim.sign(msg, selector, domain, key, canonicalize=(b"relaxed", b"relaxed"),
                include_headers=[b"from", b"to", b"subject", b"date", b"message-id"])
sys.stdout.buffer.write(sig + msg)
' "$@"
}

# ---- opendkim ---------------------------------------------------------------

# start_opendkim: opendkim -f from examples/milters/opendkim-verify.conf on
# $TEST_TMP/opendkim/dkim.sock, AuthservID $AUTHSERV_ID, asking the DNS server
# of start_dns_server ($DNS_PORT). Sets DKIM_SOCKET.
#
# Debian's opendkim resolves through libunbound, whose options come from a
# file (ResolverConfiguration): a forwarder on a port other than 53 is
# "forward-addr: 127.0.0.1@PORT"; libunbound never asks an address of this
# machine unless do-not-query-localhost is off, and answers every name under
# .test itself (NXDOMAIN, RFC 6761) unless that zone is "nodefault".
start_opendkim()
{
    need_daemon /usr/sbin/opendkim
    local dir=$TEST_TMP/opendkim
    mkdir -p "$dir"
    cat >"$dir/unbound.conf" <<EOF
server:
    do-not-query-localhost: no
    local-zone: "test." nodefault
forward-zone:
    name: "."
    forward-addr: 127.0.0.1@$DNS_PORT
EOF
    DKIM_SOCKET=$dir/dkim.sock
    config_from_example "$MILTER_EXAMPLES/opendkim-verify.conf" "$dir/opendkim.conf" \
        "Socket=local:$DKIM_SOCKET" "PidFile=$dir/opendkim.pid" "AuthservID=$AUTHSERV_ID" \
        "ResolverConfiguration=$dir/unbound.conf" "UserID=" "Syslog=no"
    start_bg "$dir/opendkim.log" /usr/sbin/opendkim -f -x "$dir/opendkim.conf"
    DKIM_PID=$BG_PID
    wait_for_unix_socket "$DKIM_SOCKET" "$DKIM_PID" "$dir/opendkim.log"
}

# ---- rspamd -----------------------------------------------------------------

# start_rspamd: rspamd -f with Debian's /etc/rspamd/rspamd.conf and
# examples/milters/rspamd-milter/local.d as its local configuration; the
# test's changes in override.d: the proxy (milter) worker on 127.0.0.1 and a
# free port, no normal or controller worker (the proxy scans by itself), the
# log on standard error, the DNS server of start_dns_server, a public suffix
# list of a few names (compiling the whole of it takes rspamd 12 s), no
# fuzzy hash servers, no Hyperscan (its regular expressions compiled in the
# background, seconds of CPU a short test does not need), its databases and
# run files in $TEST_TMP/rspamd. No Redis. Sets RSPAMD_PORT.
start_rspamd()
{
    need_daemon /usr/bin/rspamd
    [[ -r /etc/rspamd/rspamd.conf ]] || skip_test "/etc/rspamd/rspamd.conf is missing (make deps installs rspamd)"
    local dir=$TEST_TMP/rspamd
    mkdir -p "$dir/conf/override.d" "$dir/db" "$dir/run"
    cp -R "$MILTER_EXAMPLES/rspamd-milter/local.d" "$dir/conf/local.d"
    RSPAMD_PORT=$(free_port)
    printf 'bind_socket = "127.0.0.1:%s";\n' "$RSPAMD_PORT" >"$dir/conf/override.d/worker-proxy.inc"
    echo 'count = -1;' >"$dir/conf/override.d/worker-normal.inc"
    echo 'count = -1;' >"$dir/conf/override.d/worker-controller.inc"
    printf 'type = "console";\nlevel = "info";\n' >"$dir/conf/override.d/logging.inc"
    printf 'com\norg\nnet\ntest\nexample\n' >"$dir/tlds.dat"
    # Its fuzzy hash servers are looked up by name when it starts, through the
    # system's resolver: not here.
    echo 'enabled = false;' >"$dir/conf/override.d/fuzzy_check.conf"
    cat >"$dir/conf/override.d/options.inc" <<EOF
dns {
  nameserver = ["127.0.0.1:$DNS_PORT"];
  timeout = 1s;
  retransmits = 1;
}
url_tld = "$dir/tlds.dat";
disable_hyperscan = true;
EOF
    local insecure=()
    # As root rspamd wants a user to become, or --insecure (-i) to stay.
    [[ $(id -u) == 0 ]] && insecure=(-i)
    start_bg "$dir/rspamd.log" /usr/bin/rspamd -f "${insecure[@]}" -c /etc/rspamd/rspamd.conf \
        --var "LOCAL_CONFDIR=$dir/conf" --var "DBDIR=$dir/db" --var "RUNDIR=$dir/run" --var "LOGDIR=$dir"
    RSPAMD_PID=$BG_PID
    local t0=$SECONDS
    wait_for_address 127.0.0.1 "$RSPAMD_PORT" "$RSPAMD_PID" "$dir/rspamd.log"
    echo "rspamd listens after about $((SECONDS - t0)) s"
}

# ---- opendmarc --------------------------------------------------------------

# start_opendmarc ZONE: opendmarc -f from examples/milters/opendmarc.conf on
# $TEST_TMP/opendmarc/dmarc.sock, AuthservID and TrustedAuthservIDs
# $AUTHSERV_ID, checking every client (an empty IgnoreHosts file), with a
# DNS server answering from ZONE (see dns_server.py). Sets DMARC_SOCKET.
#
# opendmarc and its SPF library ask the name servers of /etc/resolv.conf,
# on port 53, and have no option to name others: opendmarc runs in a
# network and mount namespace of its own (unshare), where loopback is its
# alone, the test's DNS server listens on 127.0.0.1:53 and a resolv.conf
# naming it is mounted over /etc/resolv.conf. The socket is a file, which
# smtpspool reaches from outside. Skips the test when namespaces cannot be
# made here (a container without the privilege).
start_opendmarc()
{
    local zone=$1
    need_daemon /usr/sbin/opendmarc
    need_dnslib
    need_tool unshare ip
    local dir=$TEST_TMP/opendmarc ns=(--net --mount)
    mkdir -p "$dir"
    [[ $(id -u) == 0 ]] || ns+=(--map-root-user)
    unshare "${ns[@]}" true 2>/dev/null || skip_test "cannot make a network namespace here (unshare ${ns[*]})"
    : >"$dir/ignore.hosts"
    echo 'nameserver 127.0.0.1' >"$dir/resolv.conf"
    DMARC_SOCKET=$dir/dmarc.sock
    config_from_example "$MILTER_EXAMPLES/opendmarc.conf" "$dir/opendmarc.conf" \
        "Socket=local:$DMARC_SOCKET" "PidFile=$dir/opendmarc.pid" "AuthservID=$AUTHSERV_ID" \
        "TrustedAuthservIDs=$AUTHSERV_ID" "IgnoreHosts=$dir/ignore.hosts" "UserID=" "Syslog=false"
    # The script waits for both daemons, so that it reaps them when it is
    # told to stop: nothing outlives it.
    # shellcheck disable=SC2016 # the script's own arguments, expanded inside
    start_bg "$dir/opendmarc.log" unshare "${ns[@]}" bash -c '
set -e
ip link set lo up
mount --bind "$1" /etc/resolv.conf
"$2" "$3" 53 "$4" &
dns=$!
for _ in $(seq 100); do
    (exec 3<>/dev/tcp/127.0.0.1/53) 2>/dev/null && break
    sleep 0.05
done
/usr/sbin/opendmarc -f -c "$5" &
milter=$!
trap "kill $milter $dns 2>/dev/null; wait; exit 0" TERM INT
wait $milter
' opendmarc-ns "$dir/resolv.conf" "$DNSLIB_PYTHON" "$E2E_DIR/dns_server.py" "$zone" "$dir/opendmarc.conf"
    DMARC_PID=$BG_PID
    wait_for_unix_socket "$DMARC_SOCKET" "$DMARC_PID" "$dir/opendmarc.log"
}

# ---- sessions -----------------------------------------------------------------

# milter_session SPOOL MESSAGE ARGS...: one SMTP session piped into smtpspool
# as if tcpserver had accepted it from 203.0.113.7, named client.sign.test (a
# network client, not a local one: the filters check it; $MILTER_CLIENT_IP
# and $MILTER_CLIENT_NAME name another), mail from alice@sign.test to bob@b.test,
# the file MESSAGE (CRLF line ends) as the data; smtpspool gets
# --hostname $AUTHSERV_ID --authserv-id $AUTHSERV_ID --local-domain b.test and
# ARGS. Prints smtpspool's replies; its log (stderr) goes to SPOOL.log.
milter_session()
{
    local spool=$1 message=$2
    shift 2
    {
        printf 'EHLO client.sign.test\r\nMAIL FROM:<alice@sign.test>\r\nRCPT TO:<bob@b.test>\r\nDATA\r\n'
        # Dot-stuffed, then the end of the data.
        sed 's/^\./../' "$message"
        printf '.\r\nQUIT\r\n'
    } | TCPREMOTEIP=${MILTER_CLIENT_IP:-203.0.113.7} TCPREMOTEPORT=40000 \
        TCPREMOTEHOST=${MILTER_CLIENT_NAME:-client.sign.test} TCPLOCALIP=127.0.0.1 TCPLOCALPORT=25 \
        "$SMTPSPOOL_BIN" --spool "$spool" --hostname "$AUTHSERV_ID" --authserv-id "$AUTHSERV_ID" \
        --local-domain b.test --log stderr "$@" 2>>"$spool.log"
}

# queued_as REPLIES: the queue id in the "250 ... queued as ID" reply, or "".
queued_as()
{
    sed -n 's/^250 .*queued as \([A-Za-z0-9_-]*\).*/\1/p' <<<"$1" | tr -d '\r'
}
