#!/bin/bash
# Two milters in a chain, as examples/milters/opendmarc.conf says: opendkim
# (verifying), then opendmarc, which reads opendkim's Authentication-Results:
# (a trusted authserv-id, ours) and the DMARC policy of sign.test (p=reject)
# from a DNS server of its own (start_opendmarc). A message signed for
# sign.test from a network client:
#  - as sent: stored with dkim=pass (opendkim) and dmarc=pass (opendmarc);
#  - its body changed: dkim=fail, no SPF record either, so DMARC fails and
#    opendmarc refuses it as the policy asks (550 5.7.1 rejected by DMARC
#    policy for sign.test); nothing queued.
# shellcheck source=tests/e2e/lib.sh
source "$(dirname "$0")/lib.sh"
# shellcheck source=tests/e2e/deliverylib.sh
source "$E2E_DIR/deliverylib.sh"
# shellcheck source=tests/e2e/milterlib.sh
source "$E2E_DIR/milterlib.sh"
need_daemon /usr/sbin/opendkim /usr/sbin/opendmarc
need_dnslib
need_dkimpy

SPOOL=$TEST_TMP/spool
TXT=$(make_dkim_key sign.test sel "$TEST_TMP/keys")
printf '{"sel._domainkey.sign.test": {"TXT": ["%s"]}, "_dmarc.sign.test": {"TXT": ["v=DMARC1; p=reject"]}}\n' \
    "$TXT" >"$TEST_TMP/zone.json"
start_dns_server "$TEST_TMP/zone.json"
start_opendkim
start_opendmarc "$TEST_TMP/zone.json"
MILTERS=(--milter "unix:$DKIM_SOCKET" --milter "unix:$DMARC_SOCKET")

printf 'From: Alice <alice@sign.test>\r\nTo: bob@b.test\r\nSubject: signed\r\nDate: Sun, 06 Dec 2026 09:00:00 +0000\r\nMessage-ID: <t74@sign.test>\r\n\r\nA signed message.\r\n' |
    dkim_sign "$TEST_TMP/keys/sel.private" sign.test sel >"$TEST_TMP/signed.eml"
sed 's/^A signed message\./A changed message./' "$TEST_TMP/signed.eml" >"$TEST_TMP/changed.eml"

step "signed and aligned: dkim=pass, then dmarc=pass"
out=$(milter_session "$SPOOL" "$TEST_TMP/signed.eml" "${MILTERS[@]}")
echo "$out"
id=$(queued_as "$out")
assert_ne "" "$id" "queue id of the signed message"
ar=$("$SMTPSPOOL_BIN" cat --spool "$SPOOL" "$id" | tr -d '\r' | sed '/^$/q' |
    sed -e ':a' -e 'N' -e '$!ba' -e 's/\n[ \t]\+/ /g' | grep -i '^Authentication-Results:' || true)
echo "$ar"
assert_match "$ar" "(^|"$'\n'")Authentication-Results: $AUTHSERV_ID; +dkim=pass .*header\.d=sign\.test" \
    "the stored Authentication-Results:"
assert_match "$ar" "(^|"$'\n'")Authentication-Results: $AUTHSERV_ID; dmarc=pass \(p=reject dis=none\) header\.from=sign\.test" \
    "the stored Authentication-Results:"
assert_contains "$(cat "$TEST_TMP/zone.json.log")" "_dmarc.sign.test TXT" "the DNS server's queries"

step "changed after signing: refused by opendmarc as p=reject asks"
out=$(milter_session "$SPOOL" "$TEST_TMP/changed.eml" "${MILTERS[@]}")
echo "$out"
assert_contains "$out" $'\n550 5.7.1 rejected by DMARC policy for sign.test' "smtpspool's replies"
assert_eq "" "$(queued_as "$out")" "a queue id for the changed message"
assert_eq 1 "$(count_entries "$SPOOL/queue")" "messages in the queue"
