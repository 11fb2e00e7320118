#!/bin/bash
# Symbolic links planted in the spool never make remove, runq, cat or mailq
# read, write or delete outside it: a message directory that is a link, a
# message.eml or envelope.json that is a link, a stale envelope.json.new that
# is a link, a link waiting at tmp/removed-ID. Each command must refuse or
# ignore the link, and the files outside stay as they were. Run as root, the
# queue tools also become the spool's owner before they touch it.
# shellcheck source=tests/e2e/lib.sh
source "$(dirname "$0")/lib.sh"

SPOOL=$TEST_TMP/spool
OUTSIDE=$TEST_TMP/outside
mkdir -p "$OUTSIDE"
printf 'precious\n' >"$OUTSIDE/victim"

# queue_one: one message to u@pipe.test; prints its queue ID.
queue_one()
{
    printf 'EHLO c.test\r\nMAIL FROM:<a@c.test>\r\nRCPT TO:<u@pipe.test>\r\nDATA\r\nSubject: t\r\n\r\nbody\r\n.\r\nQUIT\r\n' |
        "$SMTPSPOOL_BIN" --spool "$SPOOL" --hostname a.test --local-domain a.test --relay-client 0.0.0.0/0 --log none |
        grep -o 'queued as [A-Za-z0-9_-]*' | cut -d' ' -f3
}

victim_intact()
{
    assert_eq "precious" "$(cat "$OUTSIDE/victim")" "the file outside the spool"
}

step "remove: queue/ID is a link to a directory outside"
id=$(queue_one)
mv "$SPOOL/queue/$id" "$OUTSIDE/moved"
ln -s "$OUTSIDE/moved" "$SPOOL/queue/$id"
status=0
out=$("$SMTPSPOOL_BIN" remove --spool "$SPOOL" "$id" 2>&1) || status=$?
assert_eq 74 "$status" "exit status of remove"
assert_contains "$out" "symbolic link" "remove says why"
assert_file "$OUTSIDE/moved/envelope.json"
assert_file "$OUTSIDE/moved/message.eml"
rm "$SPOOL/queue/$id"

step "cat: message.eml is a link to a file outside"
id=$(queue_one)
ln -sf "$OUTSIDE/victim" "$SPOOL/queue/$id/message.eml"
status=0
out=$("$SMTPSPOOL_BIN" cat --spool "$SPOOL" "$id" 2>&1) || status=$?
assert_eq 74 "$status" "exit status of cat"
assert_not_contains "$out" "precious" "cat's output"
victim_intact
rm -rf "${SPOOL:?}/queue/$id"

step "mailq: envelope.json is a link to a valid envelope outside"
id=$(queue_one)
cp "$SPOOL/queue/$id/envelope.json" "$OUTSIDE/envelope.json"
ln -sf "$OUTSIDE/envelope.json" "$SPOOL/queue/$id/envelope.json"
status=0
out=$("$SMTPSPOOL_BIN" mailq --spool "$SPOOL" 2>&1) || status=$?
assert_eq 1 "$status" "exit status of mailq"
assert_contains "$out" "symbolic link" "mailq names the refused entry"
assert_not_contains "$out" "u@pipe.test" "mailq's listing (the linked envelope is not read)"
rm -rf "${SPOOL:?}/queue/$id"

step "runq: a deferred message with a stale envelope.json.new that is a link"
id=$(queue_one)
ln -s "$OUTSIDE/victim" "$SPOOL/queue/$id/envelope.json.new"
status=0
"$SMTPSPOOL_BIN" runq --spool "$SPOOL" --hostname a.test --log stderr --route 'pipe.test=pipe:exit 75' \
    2>"$TEST_TMP/runq1.log" || status=$?
cat "$TEST_TMP/runq1.log"
assert_eq 0 "$status" "exit status of runq"
victim_intact
assert_eq 1 "$(mailq_json "$SPOOL" | python3 -c 'import json,sys; print(json.loads(sys.stdin.readline())["attempts"])')" \
    "attempts recorded in the rewritten envelope"
[[ ! -e "$SPOOL/queue/$id/envelope.json.new" && ! -L "$SPOOL/queue/$id/envelope.json.new" ]] ||
    fail "envelope.json.new is still there"

step "runq: a link waiting at tmp/removed-ID when the message is delivered"
mkdir -p "$OUTSIDE/dir"
printf 'keep\n' >"$OUTSIDE/dir/envelope.json"
ln -s "$OUTSIDE/dir" "$SPOOL/tmp/removed-$id"
status=0
"$SMTPSPOOL_BIN" runq --spool "$SPOOL" --hostname a.test --log stderr --route 'pipe.test=pipe:cat >/dev/null' "$id" \
    2>"$TEST_TMP/runq2.log" || status=$?
cat "$TEST_TMP/runq2.log"
assert_eq 0 "$status" "exit status of runq"
assert_contains "$(cat "$TEST_TMP/runq2.log")" "event=removed" "runq's log"
assert_eq 0 "$(count_entries "$SPOOL/queue")" "messages left in queue/"
assert_eq "keep" "$(cat "$OUTSIDE/dir/envelope.json")" "the file in the linked directory"
victim_intact

step "as root, the queue tools act as the spool's owner"
if [[ $(id -u) != 0 ]]; then
    skip_part "not root: cannot give the spool to another user"
else
    id=$(queue_one)
    chown -R nobody: "$SPOOL"
    chmod 0777 "$TEST_TMP"
    status=0
    "$SMTPSPOOL_BIN" runq --spool "$SPOOL" --hostname a.test --log stderr \
        --route "pipe.test=pipe:cat >/dev/null; id -u >$TEST_TMP/uid" 2>"$TEST_TMP/runq3.log" || status=$?
    cat "$TEST_TMP/runq3.log"
    assert_eq 0 "$status" "exit status of runq"
    assert_eq "$(id -u nobody)" "$(cat "$TEST_TMP/uid")" "the user the pipe command ran as"
    id=$(queue_one)
    chown -R nobody: "$SPOOL"
    "$SMTPSPOOL_BIN" remove --spool "$SPOOL" "$id"
    assert_eq 0 "$(count_entries "$SPOOL/queue")" "messages left after remove as root"
fi
