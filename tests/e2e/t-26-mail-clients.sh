#!/bin/bash
# Real mail clients against the real binary, over SMTP (under tcpserver) and
# through `smtpspool sendmail`:
#  - msmtp over SMTP: the envelope is the one given, and message.eml is the
#    input file octet for octet (LF made CRLF) after our Received: field,
#    lines ".", ".x" and "..x" and an 8-bit line included;
#  - git send-email over SMTP and with --sendmail-cmd: the envelope is the
#    author and the To:/Cc: of the patch, and `git am` of the stored message
#    gives the original change;
#  - mutt in batch mode with `set sendmail` and with `set smtp_url`: the
#    envelope is the from and the recipients, and the stored message has
#    mutt's header fields and the body.
# shellcheck source=tests/e2e/lib.sh
source "$(dirname "$0")/lib.sh"
need_tool tcpserver tcprules python3 msmtp mutt git
[[ -x "$(git --exec-path)/git-send-email" ]] || skip_test "git send-email is not installed (make deps installs git-email)"

SPOOL=$TEST_TMP/spool
export HOME=$TEST_TMP GIT_CONFIG_NOSYSTEM=1 LC_ALL=C.UTF-8
RULES=$TEST_TMP/tcp.smtp.cdb
compile_rules "$REPO_ROOT/examples/tcpserver/tcp.smtp" "$RULES"
start_tcpserver "$RULES" 10 --spool "$SPOOL" --hostname mx.test.example --local-domain test.example --log stderr

# The sendmail interface reads its settings from $SMTPSPOOL_CONFIG.
cat >"$TEST_TMP/smtpspool.conf" <<EOF
spool = $SPOOL
hostname = sm.test.example
log = none
EOF
export SMTPSPOOL_CONFIG=$TEST_TMP/smtpspool.conf
SENDMAIL=$TEST_TMP/sendmail
printf '#!/bin/sh\nexec "%s" sendmail "$@"\n' "$SMTPSPOOL_BIN" >"$SENDMAIL"
chmod +x "$SENDMAIL"

# check_spooled ID FROM RCPTS [EXACT_FILE]: the envelope's sender and
# recipients (space separated, in order); with EXACT_FILE, message.eml after
# our Received: field is that file with LF made CRLF; with BODY_FILE set, the
# body is. Prints the message without the Received: field on stdout.
check_spooled()
{
    SPOOL=$SPOOL python3 - "$@" <<'EOF'
import os, sys
from e2elib import *

def main():
    qid, sender, rcpts = sys.argv[1:4]
    env, msg = load(os.environ["SPOOL"], qid)
    if env["client"].get("protocol") != "local": # these two know network clients only
        check_envelope(env, qid, msg)
        split_received(msg, qid)
    expect_eq(sender, env["mail_from"], f"{qid}: mail_from")
    expect_eq(rcpts, " ".join(r["address"] for r in env["recipients"]), f"{qid}: recipients")
    expect(msg.startswith(b"Received: "), f"{qid}: message.eml", "to start with 'Received: '", msg[:60])
    end = msg.find(b"\r\n")
    while end >= 0 and msg[end + 2:end + 3] in (b" ", b"\t"):
        end = msg.find(b"\r\n", end + 2)
    expect(end >= 0, f"{qid}: message.eml", "a header section", msg[:300])
    rest = msg[end + 2:]
    expect_crlf_only(rest, f"{qid}: message.eml")
    if len(sys.argv) > 4:
        with open(sys.argv[4], "rb") as f:
            want = f.read().replace(b"\n", b"\r\n")
        expect_eq(want, rest, f"{qid}: message.eml after the Received: field (byte-exact)")
    if os.environ.get("BODY_FILE"):
        with open(os.environ["BODY_FILE"], "rb") as f:
            want = f.read().replace(b"\n", b"\r\n")
        expect(b"\r\n\r\n" in rest, f"{qid}: message.eml", "a header section and a body", rest[:300])
        expect_eq(want, rest.split(b"\r\n\r\n", 1)[1], f"{qid}: the body (byte-exact)")
    sys.stdout.buffer.write(rest)

run(main)
EOF
}

SEEN=" "
# new_id: the one message queued since the last call (fails on none or more).
new_id()
{
    local ids=() path id
    for path in "$SPOOL"/queue/*; do
        id=${path##*/}
        [[ "$SEEN" == *" $id "* ]] || ids+=("$id")
    done
    assert_eq 1 "${#ids[@]}" "messages queued by this step (${ids[*]})"
    SEEN+="${ids[0]} "
    NEW_ID=${ids[0]}
}

step "msmtp over SMTP: envelope as given, message byte-exact"
cat >"$TEST_TMP/msg1.txt" <<'EOF'
From: Alice <alice@client.example>
To: bob@test.example
Date: Sat, 05 Dec 2026 10:00:00 +0000
Message-ID: <msmtp-1@client.example>
Subject: msmtp test

Dot lines follow.
.
.x
..x
Ünïcödé in the body, 8-bit.
last line
EOF
printf 'defaults\n' >"$TEST_TMP/msmtprc"
chmod 600 "$TEST_TMP/msmtprc"
set +e
out=$(msmtp -C "$TEST_TMP/msmtprc" --host=127.0.0.1 --port="$PORT" --auth=off --tls=off --domain=client.example \
    --from=alice@client.example bob@test.example carol@remote.example <"$TEST_TMP/msg1.txt" 2>&1)
status=$?
set -e
assert_eq 0 "$status" "msmtp exit status (output: $out)"
new_id
check_spooled "$NEW_ID" alice@client.example "bob@test.example carol@remote.example" "$TEST_TMP/msg1.txt" >/dev/null

step "msmtp -t --read-envelope-from: recipients and sender from the header"
set +e
out=$(msmtp -C "$TEST_TMP/msmtprc" --host=127.0.0.1 --port="$PORT" --auth=off --tls=off --domain=client.example \
    -t --read-envelope-from <"$TEST_TMP/msg1.txt" 2>&1)
status=$?
set -e
assert_eq 0 "$status" "msmtp -t exit status (output: $out)"
new_id
check_spooled "$NEW_ID" alice@client.example "bob@test.example" "$TEST_TMP/msg1.txt" >/dev/null

# A repository with two commits; the second is sent as a patch.
REPO=$TEST_TMP/repo
git init -q "$REPO"
git -C "$REPO" config user.name "Dev Eloper"
git -C "$REPO" config user.email dev@client.example
printf 'one\n' >"$REPO/file"
git -C "$REPO" add file
git -C "$REPO" commit -q -m "first"
printf 'two\nÜnïcödé\n' >>"$REPO/file"
git -C "$REPO" commit -q -a -m "second: a change"
git -C "$REPO" format-patch -q -1 -o "$TEST_TMP/patches"
PATCH=$(ls "$TEST_TMP"/patches/*.patch)
cp "$REPO/file" "$TEST_TMP/file.want"

# check_patch ID: the stored message applies with git am and gives the change.
check_patch()
{
    local id=$1 msg header
    msg=$(check_spooled "$id" dev@client.example "maint@test.example rev@test.example")
    header=${msg%%$'\r\n\r\n'*}
    assert_contains "$header" $'\r\nSubject: [PATCH] second: a change' "the header section of $id"
    assert_match "$header" $'(^|\r\n)From: Dev Eloper <dev@client\\.example>(\r\n|$)' "the header section of $id"
    assert_match "$header" $'(^|\r\n)To: maint@test\\.example(\r\n|$)' "the header section of $id"
    assert_match "$header" $'(^|\r\n)Cc: Rev Iewer <rev@test\\.example>(\r\n|$)' "the header section of $id"
    git -C "$REPO" checkout -q -f main 2>/dev/null || git -C "$REPO" checkout -q -f master
    git -C "$REPO" checkout -q --detach HEAD~1
    "$SMTPSPOOL_BIN" cat --spool "$SPOOL" "$id" | git -C "$REPO" am -q
    assert_files_equal "$TEST_TMP/file.want" "$REPO/file" "the file after git am of $id"
    assert_eq "second: a change" "$(git -C "$REPO" log -1 --format=%s)" "the subject of the commit applied from $id"
    assert_eq "Dev Eloper <dev@client.example>" "$(git -C "$REPO" log -1 --format='%an <%ae>')" \
        "the author of the commit applied from $id"
}

GSE=(git -C "$REPO" send-email --confirm=never --suppress-cc=all --no-annotate --no-thread
    --from="Dev Eloper <dev@client.example>" --to=maint@test.example --cc="Rev Iewer <rev@test.example>"
    --8bit-encoding=UTF-8)

step "git send-email over SMTP: envelope from the patch, git am gives the change"
set +e
out=$("${GSE[@]}" --smtp-server=127.0.0.1 --smtp-server-port="$PORT" --smtp-domain=client.example \
    "$PATCH" </dev/null 2>&1)
status=$?
set -e
assert_eq 0 "$status" "git send-email exit status (output: $out)"
assert_contains "$out" "OK. Log says:" "git send-email output"
new_id
check_patch "$NEW_ID"

step "git send-email --sendmail-cmd 'smtpspool sendmail' --envelope-sender=auto (-f): the same"
set +e
out=$("${GSE[@]}" --sendmail-cmd="$SENDMAIL" --envelope-sender=auto "$PATCH" </dev/null 2>&1)
status=$?
set -e
assert_eq 0 "$status" "git send-email --sendmail-cmd exit status (output: $out)"
new_id
check_patch "$NEW_ID"

printf 'Hello from mutt.\nÜnïcödé line.\n.\nlast line\n' >"$TEST_TMP/mutt-body.txt"
# check_mutt ID: envelope and the fields mutt wrote, and the body.
check_mutt()
{
    local id=$1 msg header
    msg=$(BODY_FILE=$TEST_TMP/mutt-body.txt check_spooled "$id" alice@client.example \
        "bob@test.example carol@remote.example")
    header=${msg%%$'\r\n\r\n'*}
    assert_match "$header" $'(^|\r\n)From: Alice <alice@client\\.example>(\r\n|$)' "the header section of $id"
    assert_match "$header" $'(^|\r\n)To: bob@test\\.example, carol@remote\\.example(\r\n|$)' "the header section of $id"
    assert_match "$header" $'(^|\r\n)Subject: mutt test =\\?utf-8\\?(Q\\?=C3=BC|B\\?w7w=)\\?=(\r\n|$)' "the header section of $id"
    assert_match "$header" $'(^|\r\n)Content-Transfer-Encoding: 8bit(\r\n|$)' "the header section of $id"
}

cat >"$TEST_TMP/muttrc.common" <<'EOF'
set from="Alice <alice@client.example>"
set use_from=yes
set use_envelope_from=yes
set charset="utf-8"
set send_charset="us-ascii:utf-8"
set record=""
set folder="~"
set spoolfile=""
set hostname="client.example"
set copy=no
set postpone=no
EOF

# -oi as in mutt's default: without it a line "." ends the message, as with
# every sendmail.
step "mutt batch mode with set sendmail='smtpspool sendmail -oem -oi'"
{ cat "$TEST_TMP/muttrc.common"; printf 'set sendmail="%s -oem -oi"\n' "$SENDMAIL"; } >"$TEST_TMP/muttrc.sendmail"
set +e
out=$(mutt -n -F "$TEST_TMP/muttrc.sendmail" -s 'mutt test ü' -- bob@test.example carol@remote.example \
    <"$TEST_TMP/mutt-body.txt" 2>&1)
status=$?
set -e
assert_eq 0 "$status" "mutt exit status (output: $out)"
new_id
check_mutt "$NEW_ID"

step "mutt batch mode with set smtp_url"
{
    cat "$TEST_TMP/muttrc.common"
    printf 'set smtp_url="smtp://127.0.0.1:%s/"\nset ssl_starttls=no\nset ssl_force_tls=no\n' "$PORT"
} >"$TEST_TMP/muttrc.smtp"
set +e
out=$(mutt -n -F "$TEST_TMP/muttrc.smtp" -s 'mutt test ü' -- bob@test.example carol@remote.example \
    <"$TEST_TMP/mutt-body.txt" 2>&1)
status=$?
set -e
assert_eq 0 "$status" "mutt (smtp_url) exit status (output: $out)"
new_id
check_mutt "$NEW_ID"
echo "PASS"
