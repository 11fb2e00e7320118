#!/bin/bash
# opendkim as a verifying milter (--milter unix:PATH), started from
# examples/milters/opendkim-verify.conf, its keys from a DNS server on
# loopback (dnslib). A message signed with dkimpy for sign.test:
#  - as sent: stored with opendkim's Authentication-Results: field, our
#    authserv-id, dkim=pass for header.d=sign.test;
#  - its body changed after signing: stored with dkim=fail;
#  - the changed one again with a forged "Authentication-Results:
#    mx.test.example; dkim=pass" of its own: the forged field is not stored,
#    opendkim's dkim=fail is.
# shellcheck source=tests/e2e/lib.sh
source "$(dirname "$0")/lib.sh"
# shellcheck source=tests/e2e/deliverylib.sh
source "$E2E_DIR/deliverylib.sh"
# shellcheck source=tests/e2e/milterlib.sh
source "$E2E_DIR/milterlib.sh"
need_daemon /usr/sbin/opendkim
need_dnslib
need_dkimpy

SPOOL=$TEST_TMP/spool
TXT=$(make_dkim_key sign.test sel "$TEST_TMP/keys")
printf '{"sel._domainkey.sign.test": {"TXT": ["%s"]}}\n' "$TXT" >"$TEST_TMP/zone.json"
start_dns_server "$TEST_TMP/zone.json"
start_opendkim

printf 'From: Alice <alice@sign.test>\r\nTo: bob@b.test\r\nSubject: signed\r\nDate: Sun, 06 Dec 2026 09:00:00 +0000\r\nMessage-ID: <t72@sign.test>\r\n\r\nA signed message.\r\n.leading dot\r\n' |
    dkim_sign "$TEST_TMP/keys/sel.private" sign.test sel >"$TEST_TMP/signed.eml"
sed 's/^A signed message\./A changed message./' "$TEST_TMP/signed.eml" >"$TEST_TMP/changed.eml"
{
    printf 'Authentication-Results: %s;\r\n\tdkim=pass header.d=sign.test\r\n' "$AUTHSERV_ID"
    cat "$TEST_TMP/changed.eml"
} >"$TEST_TMP/forged.eml"

# stored_header ID: the header section of the stored message, unfolded.
stored_header()
{
    "$SMTPSPOOL_BIN" cat --spool "$SPOOL" "$1" | tr -d '\r' | sed '/^$/q' | sed -e ':a' -e 'N' -e '$!ba' -e 's/\n[ \t]\+/ /g'
}

# dkim_results ID: the Authentication-Results: fields of the stored message.
dkim_results()
{
    stored_header "$1" | grep -i '^Authentication-Results:' || true
}

step "a signed message: dkim=pass with our authserv-id"
out=$(milter_session "$SPOOL" "$TEST_TMP/signed.eml" --milter "unix:$DKIM_SOCKET")
echo "$out"
id=$(queued_as "$out")
assert_ne "" "$id" "queue id of the signed message"
ar=$(dkim_results "$id")
echo "$ar"
assert_eq 1 "$(grep -c . <<<"$ar")" "Authentication-Results: fields stored"
assert_match "$ar" "^Authentication-Results: $AUTHSERV_ID; +dkim=pass .*header\.d=sign\.test .*header\.s=sel" \
    "the stored Authentication-Results:"
assert_contains "$(cat "$TEST_TMP/zone.json.log")" "sel._domainkey.sign.test TXT" "the DNS server's queries"
# The body as it was sent (dot-unstuffed), after the header section.
body=$("$SMTPSPOOL_BIN" cat --spool "$SPOOL" "$id" | sed '1,/^\r$/d')
assert_eq "$(sed '1,/^\r$/d' "$TEST_TMP/signed.eml")" "$body" "the stored body"

step "its body changed after signing: dkim=fail"
out=$(milter_session "$SPOOL" "$TEST_TMP/changed.eml" --milter "unix:$DKIM_SOCKET")
echo "$out"
id=$(queued_as "$out")
assert_ne "" "$id" "queue id of the changed message"
ar=$(dkim_results "$id")
echo "$ar"
assert_eq 1 "$(grep -c . <<<"$ar")" "Authentication-Results: fields stored"
assert_match "$ar" "^Authentication-Results: $AUTHSERV_ID; +dkim=fail .*header\.d=sign\.test" \
    "the stored Authentication-Results:"

step "a forged Authentication-Results: with our authserv-id is not stored"
out=$(milter_session "$SPOOL" "$TEST_TMP/forged.eml" --milter "unix:$DKIM_SOCKET")
echo "$out"
id=$(queued_as "$out")
assert_ne "" "$id" "queue id of the forged message"
ar=$(dkim_results "$id")
echo "$ar"
assert_eq 1 "$(grep -c . <<<"$ar")" "Authentication-Results: fields stored"
assert_not_contains "$ar" "dkim=pass" "the stored Authentication-Results:"
assert_match "$ar" "^Authentication-Results: $AUTHSERV_ID; +dkim=fail " "the stored Authentication-Results:"
