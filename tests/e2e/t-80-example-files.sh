#!/bin/bash
# The example files under examples/ that the other tests do not run:
#  - examples/inetd.conf and examples/xinetd.d/smtpspool: their fields are the
#    ones inetd and xinetd need, and the command line they name serves a real
#    session when started the way inetd starts it (a small Python stand-in:
#    accept on 127.0.0.1, the connection on fds 0, 1 and 2, argv[0] as given):
#    the client sees nothing but SMTP replies, the message is spooled with the
#    peer from getpeername(2). The real inetd and xinetd run them in
#    tests/integration.
#  - examples/tcpserver/run: sh -n, and shellcheck when it is installed.
# shellcheck source=tests/e2e/lib.sh
source "$(dirname "$0")/lib.sh"
need_tool python3

# serve_like_inetd NAME ARGV0 SERVER ARGS...: one connection, one message.
serve_like_inetd()
{
    local name=$1
    shift
    NAME=$name SPOOL=$TEST_TMP/spool-$name python3 - "$@" <<'EOF'
import os, smtplib, socket, subprocess, sys, threading
from e2elib import *

argv0, server, args = sys.argv[1], sys.argv[2], sys.argv[3:]
name, spool = os.environ["NAME"], os.environ["SPOOL"]
body = b"Subject: through the " + name.encode() + b" command line\r\n\r\nhello\r\n"

def main():
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)
    port = listener.getsockname()[1]
    result = {}
    def superserver():
        conn, _ = listener.accept()
        # As inetd does: the connection on stdin, stdout and stderr.
        p = subprocess.Popen([argv0] + args, executable=server, stdin=conn, stdout=conn, stderr=conn,
                             env={"PATH": "/usr/bin:/bin"})
        conn.close()
        result["status"] = p.wait(timeout=30)
    t = threading.Thread(target=superserver)
    t.start()
    c = smtplib.SMTP("127.0.0.1", port, local_hostname="inetd.test.example", timeout=20)
    c.set_debuglevel(0)
    code, _ = c.ehlo()
    expect_eq(250, code, "EHLO reply")
    source_port = c.sock.getsockname()[1]
    c.mail("i@client.test.example")
    code, text = c.rcpt("someone@localhost")
    expect_eq(250, code, f"RCPT reply ({text!r})")
    code, text = c.data(body)
    expect_eq(250, code, f"DATA reply ({text!r})")
    qid = queued_id(text.decode(), "DATA reply")
    code, text = c.docmd("QUIT")
    expect_eq(221, code, "QUIT reply")
    # Whatever the server writes after 221 would be garbage on the socket.
    rest = c.sock.recv(4096)
    expect_eq(b"", rest, "output after the 221 reply")
    c.close()
    t.join(timeout=30)
    expect_eq(0, result.get("status"), f"{name}: smtpspool's exit status")
    env, msg = load(spool, qid)
    check_envelope(env, qid, msg)
    expect_eq("127.0.0.1", env["client"]["address"], "client.address (getpeername)")
    expect_eq(source_port, env["client"]["port"], "client.port")
    _, rest = split_received(msg, qid)
    expect_eq(body, rest, "the message")

run(main)
EOF
}

step "examples/inetd.conf"
mapfile -t rules < <(grep -v '^[[:space:]]*#' "$REPO_ROOT/examples/inetd.conf" | grep -v '^[[:space:]]*$')
assert_eq 1 "${#rules[@]}" "service lines in inetd.conf"
read -r -a f <<<"${rules[0]}"
assert_eq "smtp stream tcp nowait.256 smtpspool" "${f[*]:0:5}" "inetd.conf: service, socket type, protocol, wait, user"
assert_eq /usr/local/sbin/smtpspool "${f[5]}" "inetd.conf: server program"
assert_eq smtpspool "${f[6]}" "inetd.conf: argv[0]"
args=("${f[@]:7}")
assert_contains "${args[*]}" "--config /etc/smtpspool.conf" "inetd.conf: arguments"
printf 'spool = %s\n' "$TEST_TMP/spool-inetd" >"$TEST_TMP/inetd.conf"
args=("${args[@]//\/etc\/smtpspool.conf/$TEST_TMP/inetd.conf}")
serve_like_inetd inetd "${f[6]}" "$SMTPSPOOL_BIN" "${args[@]}"

step "examples/xinetd.d/smtpspool"
X=$REPO_ROOT/examples/xinetd.d/smtpspool
setting()
{
    sed -n "s/^[[:space:]]*$1[[:space:]]*=[[:space:]]*\(.*[^[:space:]]\)[[:space:]]*$/\1/p" "$X"
}
assert_match "$(head -20 "$X" | grep -v '^#' | grep -m1 .)" '^service smtp$' "xinetd: the service line"
assert_eq stream "$(setting socket_type)" "xinetd: socket_type"
assert_eq tcp "$(setting protocol)" "xinetd: protocol"
assert_eq no "$(setting wait)" "xinetd: wait"
assert_eq smtpspool "$(setting user)" "xinetd: user"
assert_eq /usr/local/sbin/smtpspool "$(setting server)" "xinetd: server"
assert_eq no "$(setting disable)" "xinetd: disable"
assert_eq "$(grep -c '{' "$X")" "$(grep -c '}' "$X")" "xinetd: braces"
read -r -a args <<<"$(setting server_args)"
assert_contains "${args[*]}" "--config /etc/smtpspool.conf" "xinetd: server_args"
printf 'spool = %s\n' "$TEST_TMP/spool-xinetd" >"$TEST_TMP/xinetd.conf"
args=("${args[@]//\/etc\/smtpspool.conf/$TEST_TMP/xinetd.conf}")
# xinetd passes the program's base name as argv[0].
serve_like_inetd xinetd smtpspool "$SMTPSPOOL_BIN" "${args[@]}"

step "examples/tcpserver/run"
RUN=$REPO_ROOT/examples/tcpserver/run
[[ -x "$RUN" ]] || fail "examples/tcpserver/run: expected an executable file, found mode $(stat -c %A "$RUN")"
assert_eq "#!/bin/sh" "$(head -1 "$RUN")" "examples/tcpserver/run: first line"
sh -n "$RUN" || fail "examples/tcpserver/run: sh -n found a syntax error"
if command -v shellcheck >/dev/null 2>&1; then
    out=$(shellcheck -s sh "$RUN" 2>&1) || fail "shellcheck examples/tcpserver/run:
$out"
else
    skip_part shellcheck "shellcheck is not installed"
fi
