#!/bin/bash
# git format-patch --stdout | smtpspool sendmail -t: the mbox "From " line
# git puts first is skipped, so the patch's own header fields are the
# message's, and -t finds the recipients in its To: and Cc:.
# shellcheck source=tests/e2e/lib.sh
source "$(dirname "$0")/lib.sh"
need_tool git python3

SPOOL=$TEST_TMP/spool
REPO=$TEST_TMP/repo
export GIT_CONFIG_NOSYSTEM=1 HOME=$TEST_TMP
git init -q "$REPO"
git -C "$REPO" config user.name "Dev Eloper"
git -C "$REPO" config user.email dev@client.example
printf 'one\n' >"$REPO/file"
git -C "$REPO" add file
git -C "$REPO" commit -q -m "first"
printf 'two\n' >>"$REPO/file"
git -C "$REPO" commit -q -a -m "second: a change"

step "the patch is queued for its To: and Cc:"
git -C "$REPO" format-patch --stdout -1 --to=maint@test.example --cc="Rev Iewer <rev@test.example>" \
    >"$TEST_TMP/patch.mbox"
assert_match "$(head -n 1 "$TEST_TMP/patch.mbox")" "^From [0-9a-f]{40} " "the first line of git's output"
set +e
out=$("$SMTPSPOOL_BIN" sendmail -t -i --spool "$SPOOL" --hostname sm.test --log none <"$TEST_TMP/patch.mbox" 2>&1)
status=$?
set -e
assert_eq 0 "$status" "sendmail -t exit status (output: $out)"
id=$(ls "$SPOOL/queue")
assert_eq "maint@test.example rev@test.example" \
    "$(python3 -c 'import json,sys; print(" ".join(r["address"] for r in json.load(open(sys.argv[1]))["recipients"]))' \
        "$SPOOL/queue/$id/envelope.json")" \
    "the recipients"

step "the stored message has the patch's header fields, and git am applies it"
msg=$("$SMTPSPOOL_BIN" cat --spool "$SPOOL" "$id")
header=${msg%%$'\r\n\r\n'*}
assert_not_contains "$header" "From $(git -C "$REPO" rev-parse HEAD)" "the header section"
assert_contains "$header" $'\r\nSubject: [PATCH] second: a change\r\n' "the header section"
assert_contains "$header" $'\r\nFrom: Dev Eloper <dev@client.example>\r\n' "the header section"
git -C "$REPO" checkout -q HEAD~1
"$SMTPSPOOL_BIN" cat --spool "$SPOOL" "$id" | git -C "$REPO" am -q
assert_eq "$(printf 'one\ntwo')" "$(cat "$REPO/file")" "the file after git am"
assert_eq "second: a change" "$(git -C "$REPO" log -1 --format=%s)" "the applied commit's subject"
echo "PASS"
