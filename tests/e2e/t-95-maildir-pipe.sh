#!/bin/bash
# Local deliveries: maildir and pipe routes, and the choice of route.
# Routes: maildir.test -> maildir:$MAIL/%d/%u, special.maildir.test and
# pipe.test -> pipe:deliver.sh, blocked.test -> a maildir under a regular file.
#  1. maildir: bob@maildir.test and carol@Sub.Maildir.Test (a subdomain, in
#     capitals) each get one file in new/ of their own maildir (tmp/ empty,
#     cur/ made, a maildir(5) name, mode 0600) holding Return-Path:,
#     Delivered-To: and message.eml with LF line ends; a quoted local part
#     "../../escape" stays inside $MAIL/maildir.test; dave@special.maildir.test
#     takes the more specific pipe route; blocked.test cannot be created
#     (temporary); a domain without a route is deferred ("no route").
#  2. pipe: the command gets the message on stdin (Return-Path:, Delivered-To:,
#     LF line ends) and the envelope only in its environment (SENDER,
#     RECIPIENT, LOCAL in canonical form, DOMAIN, MESSAGE_ID, SMTPSPOOL_SPOOL, PATH; nothing of
#     runq's own environment). Addresses full of shell syntax ($(...),
#     backquotes, ;) as sender and recipients are delivered and never run.
#     Exit 75 defers, exit 1 with a text on stderr fails for good with that
#     text in last_error and in the bounce; a command running past
#     --pipe-timeout 1s is killed and deferred, with all it started. A command
#     that exits without reading a 300 KiB message decides by its exit status
#     (0 delivered, 1 failed); runq is not killed by SIGPIPE.
# shellcheck source=tests/e2e/lib.sh
source "$(dirname "$0")/lib.sh"
# shellcheck source=tests/e2e/deliverylib.sh
source "$E2E_DIR/deliverylib.sh"
need_tool python3

SPOOL=$TEST_TMP/spool
MAIL=$TEST_TMP/mail
PIPED=$TEST_TMP/piped
mkdir -p "$PIPED"
: >"$TEST_TMP/blocked"
# Markers that a command built from an address would create (the local part
# of an address is at most 64 octets, so they are short names in /tmp).
PWNED=/tmp/smtpspool-pwned-$$
rm -f "$PWNED"-*
cat >"$TEST_TMP/deliver.sh" <<EOF
#!/bin/sh
# The pipe command: keeps its environment and its input, exits as LOCAL says.
case "\$LOCAL" in
noread) exit 0 ;;
noreadfail) echo "refused unread" >&2; exit 1 ;;
esac
n=\$(mktemp "$PIPED/XXXXXX")
env -0 >"\$n.env"
cat >"\$n.msg"
case "\$LOCAL" in
tempfail) echo "try again later" >&2; exit 75 ;;
fail) echo "mailbox is over quota" >&2; echo "(uid 1234)" >&2; exit 1 ;;
sleepy) echo \$\$ >"$TEST_TMP/sleepy.pid"; exec sleep 5 ;;
esac
exit 0
EOF
chmod +x "$TEST_TMP/deliver.sh"

step "queue the messages"
SPOOL=$SPOOL PWNED=$PWNED python3 - <<'EOF' >"$TEST_TMP/ids"
import os, shutil
from e2elib import *
from deliverylib import *

spool, pwned = os.environ["SPOOL"], os.environ["PWNED"]
M1 = (b"From: alice@client.test\r\n"
      b"Subject: local deliveries\r\n"
      b"\r\n"
      b".a dot\r\n"
      b"line two\r\n")
M2 = b"Subject: shell syntax in addresses\r\n\r\nhello\r\n"
M3 = b"Subject: big, never read\r\n\r\n" + b"0123456789abcdef" * 64 * 300 + b"\r\n"  # 300 KiB

def main():
    ids = queue(spool, [
        ("alice@client.test", ["bob@maildir.test", "carol@Sub.Maildir.Test", '"../../escape"@maildir.test',
                               "dave@special.maildir.test", "x@blocked.test", "nobody@unrouted.test",
                               "ok@pipe.test", "tempfail@pipe.test", "fail@pipe.test", "sleepy@pipe.test"], M1),
        (f'"$(touch {pwned}-1)"@client.test', [f'"$(touch {pwned}-2)"@pipe.test', f'"`touch {pwned}-3`"@pipe.test',
                                              f'"x;touch {pwned}-4;"@pipe.test', f"`touch${{IFS}}{pwned}-5`@pipe.test"],
         M2),
        ("bob@client.test", ["noread@pipe.test", "noreadfail@pipe.test"], M3),
    ])
    for qid in ids:
        shutil.copytree(os.path.join(spool, "queue", qid), os.path.join(os.environ["TEST_TMP"], "q-" + qid))
    print("\n".join(ids))

run(main)
EOF
mapfile -t IDS <"$TEST_TMP/ids"
M1=${IDS[0]}
M2=${IDS[1]}
M3=${IDS[2]}

step "runq with maildir and pipe routes"
t0=$EPOCHREALTIME
status=0
(cd "$TEST_TMP" && LEAKED_TEST_VARIABLE=secret runq_logged "$TEST_TMP/runq.log" --spool "$SPOOL" \
    --hostname relay.test --pipe-timeout 1s --retry-schedule 5m \
    --route "maildir.test=maildir:$MAIL/%d/%u" \
    --route "special.maildir.test=pipe:$TEST_TMP/deliver.sh" \
    --route "pipe.test=pipe:$TEST_TMP/deliver.sh" \
    --route "blocked.test=maildir:$TEST_TMP/blocked/%u") || status=$?
ms=$(awk -v a="$t0" -v b="$EPOCHREALTIME" 'BEGIN { printf "%d", (b - a) * 1000 }')
cat "$TEST_TMP/runq.log"
echo "runq took $ms ms"
assert_eq 0 "$status" "exit status of runq"
((ms < 4000)) || fail "runq took $ms ms: the 5 s command was not stopped after --pipe-timeout 1s"

step "nothing ran the addresses"
leaked=$(ls -d "$PWNED"-* 2>/dev/null || true)
rm -f "$PWNED"-*
assert_eq "" "$leaked" "files created by shell syntax in addresses"

step "1. maildir deliveries"
SPOOL=$SPOOL MAIL=$MAIL M1=$M1 python3 - <<'EOF'
import os, re, stat
from e2elib import *
from deliverylib import *

spool, mail, m1 = os.environ["SPOOL"], os.environ["MAIL"], os.environ["M1"]
with open(os.path.join(os.environ["TEST_TMP"], "q-" + m1, "message.eml"), "rb") as f:
    eml = f.read()

def one_file(maildir, rcpt):
    for sub in ("tmp", "new", "cur"):
        expect(os.path.isdir(os.path.join(maildir, sub)), f"{maildir}", f"a {sub}/ directory", os.listdir(maildir))
    expect_eq([], os.listdir(os.path.join(maildir, "tmp")), f"{maildir}/tmp")
    expect_eq([], os.listdir(os.path.join(maildir, "cur")), f"{maildir}/cur")
    new = os.listdir(os.path.join(maildir, "new"))
    expect_eq(1, len(new), f"files in {maildir}/new")
    expect(re.fullmatch(r"\d+\.M\d+P\d+Q\d+\.relay\.test", new[0]) is not None, f"{maildir}: file name",
           "SECONDS.MusecPpidQn.relay.test", new[0])
    path = os.path.join(maildir, "new", new[0])
    expect_eq(0o600, stat.S_IMODE(os.stat(path).st_mode), f"{path}: mode")
    with open(path, "rb") as f:
        got = f.read()
    want = b"Return-Path: <alice@client.test>\nDelivered-To: " + rcpt.encode() + b"\n" + lf(eml)
    expect_eq(want, got, f"{rcpt}: the maildir file")

def main():
    one_file(os.path.join(mail, "maildir.test", "bob"), "bob@maildir.test")
    # The session stores domains in lower case.
    one_file(os.path.join(mail, "sub.maildir.test", "carol"), "carol@sub.maildir.test")
    expect_eq(["maildir.test", "sub.maildir.test"], sorted(os.listdir(mail)), f"directories in {mail}")
    others = sorted(set(os.listdir(os.path.join(mail, "maildir.test"))) - {"bob"})
    expect(len(others) == 1 and "escape" in others[0] and others[0] not in (".", ".."),
           f"{mail}/maildir.test", "bob and one maildir for \"../../escape\"", others)
    one_file(os.path.join(mail, "maildir.test", others[0]), '"../../escape"@maildir.test')
    expect(not os.path.exists(os.path.join(os.environ["TEST_TMP"], "escape")), "TEST_TMP", "no escape/", None)
    r = recipients(envelope(spool, m1))
    for a in ("bob@maildir.test", "carol@sub.maildir.test", '"../../escape"@maildir.test', "dave@special.maildir.test"):
        expect_eq(("delivered", 1, None), r[a], f"{a}: status, attempts, last_error")
    status, attempts, error = r["x@blocked.test"]
    expect_eq(("pending", 1), (status, attempts), "x@blocked.test: status and attempts")
    expect(error is not None and "cannot create maildir" in error, "x@blocked.test: last_error",
           "cannot create maildir ...", error)
    status, attempts, error = r["nobody@unrouted.test"]
    expect_eq(("pending", 1), (status, attempts), "nobody@unrouted.test: status and attempts")
    expect_eq("no route for domain unrouted.test", error, "nobody@unrouted.test: last_error")

run(main)
EOF

step "2. pipe deliveries"
SPOOL=$SPOOL PIPED=$PIPED M1=$M1 M2=$M2 M3=$M3 PWNED=$PWNED python3 - <<'EOF' >"$TEST_TMP/bounce"
import json, os, re
from e2elib import *
from deliverylib import *

spool, piped, m1, m2, m3, pwned = (os.environ[k] for k in ("SPOOL", "PIPED", "M1", "M2", "M3", "PWNED"))
saved = {}
for qid in (m1, m2, m3):
    d = os.path.join(os.environ["TEST_TMP"], "q-" + qid)
    with open(os.path.join(d, "message.eml"), "rb") as f:
        saved[qid] = f.read()
sender2 = f'"$(touch {pwned}-1)"@client.test'
rcpts2 = [f'"$(touch {pwned}-2)"@pipe.test', f'"`touch {pwned}-3`"@pipe.test', f'"x;touch {pwned}-4;"@pipe.test',
          f"`touch${{IFS}}{pwned}-5`@pipe.test"]

def main():
    runs = []
    for name in sorted(os.listdir(piped)):
        if name.endswith(".env"):
            with open(os.path.join(piped, name), "rb") as f:
                env = dict(v.split(b"=", 1) for v in f.read().split(b"\0") if v)
            with open(os.path.join(piped, name[:-4] + ".msg"), "rb") as f:
                runs.append(({k.decode(): v.decode() for k, v in env.items()}, f.read()))
    by_rcpt = {env["RECIPIENT"]: (env, msg) for env, msg in runs}
    want = {"dave@special.maildir.test": m1, "ok@pipe.test": m1, "tempfail@pipe.test": m1, "fail@pipe.test": m1,
            "sleepy@pipe.test": m1}
    want.update({r: m2 for r in rcpts2})
    expect_eq(sorted(want), sorted(by_rcpt), "recipients the pipe command ran for")
    expect_eq(len(want), len(runs), "runs of the pipe command")
    for rcpt, qid in want.items():
        env, msg = by_rcpt[rcpt]
        sender = "alice@client.test" if qid == m1 else sender2
        local, domain = rcpt.rsplit("@", 1)
        # LOCAL is the canonical local part: unquoted, ASCII lower case.
        if len(local) >= 2 and local[0] == local[-1] == '"':
            local = re.sub(r"\\(.)", r"\1", local[1:-1])
        local = "".join(c.lower() if "A" <= c <= "Z" else c for c in local)
        expect_eq({"SENDER": sender, "RECIPIENT": rcpt, "LOCAL": local, "DOMAIN": domain, "MESSAGE_ID": qid,
                   "SMTPSPOOL_SPOOL": spool, "PATH": "/usr/local/bin:/usr/bin:/bin"},
                  {k: env.get(k) for k in ("SENDER", "RECIPIENT", "LOCAL", "DOMAIN", "MESSAGE_ID", "SMTPSPOOL_SPOOL",
                                           "PATH")}, f"{rcpt}: the pipe command's environment")
        expect("LEAKED_TEST_VARIABLE" not in env and "HOME" not in env, f"{rcpt}: environment",
               "nothing of runq's own", sorted(env))
        expect_eq(f"Return-Path: <{sender}>\nDelivered-To: {rcpt}\n".encode() + lf(saved[qid]), msg,
                  f"{rcpt}: the pipe command's input")
    r = recipients(envelope(spool, m1))
    expect_eq(("delivered", 1, None), r["ok@pipe.test"], "ok@pipe.test")
    expect_eq(("pending", 1, "pipe command exited 75: try again later"), r["tempfail@pipe.test"],
              "tempfail@pipe.test (exit 75)")
    expect_eq(("failed", 1, "pipe command exited 1: mailbox is over quota (uid 1234)"), r["fail@pipe.test"],
              "fail@pipe.test (exit 1)")
    expect_eq(("pending", 1, "pipe command timed out after 1 s"), r["sleepy@pipe.test"], "sleepy@pipe.test")
    env1 = envelope(spool, m1)
    expect_eq(1, env1["attempts"], f"{m1}: attempts")
    left = queue_ids(spool)
    expect(m2 not in left, "queue/", f"no {m2} (all its recipients delivered)", left)
    expect(m3 not in left, "queue/", f"no {m3} (delivered and failed)", left)
    bounces = sorted((envelope(spool, q)["recipients"][0]["address"], q) for q in left if q != m1)
    expect_eq(["alice@client.test", "bob@client.test"], [a for a, _ in bounces], f"bounces in queue/ ({left})")
    bounces = [q for _, q in bounces]
    with open(os.path.join(os.environ["TEST_TMP"], "q-" + m3, "envelope.json")) as f:
        orig3 = json.load(f)
    check_bounce(spool, bounces[1], orig3,
                 {"noreadfail@pipe.test": (r"5\.0\.0", "x-local; pipe command exited 1: refused unread")},
                 head_of(saved[m3]))
    with open(os.path.join(os.environ["TEST_TMP"], "q-" + m1, "envelope.json")) as f:
        orig = json.load(f)
    check_bounce(spool, bounces[0], orig,
                 {"fail@pipe.test": (r"5\.0\.0", "x-local; pipe command exited 1: mailbox is over quota (uid 1234)")},
                 head_of(saved[m1]))
    print(bounces[0])

run(main)
EOF
log=$(cat "$TEST_TMP/runq.log")
assert_contains "$log" "delivered=10 deferred=4 failed=2 bounces=2 removed=2" "runq log"

step "3. the command that ran past --pipe-timeout is gone, not only the shell that started it"
pid=$(cat "$TEST_TMP/sleepy.pid")
# Killed is enough: a zombie waits for init, which reaps it in its own time.
state=$(awk '{ print $3 }' "/proc/$pid/stat" 2>/dev/null || true)
if [[ -n "$state" && "$state" != Z ]]; then
    args=$(ps -o args= -p "$pid" || true)
    kill -KILL "$pid" 2>/dev/null || true
    for _ in $(seq 50); do # until init has reaped it (it can take seconds)
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    fail "the pipe command timed out after 1 s, but its process $pid ($args) still runs after runq has ended:" \
        "runq kills /bin/sh -c, not the command it started"
fi
