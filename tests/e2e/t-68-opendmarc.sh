#!/bin/bash
# opendmarc, started from examples/milters/opendmarc.conf with a DNS server
# of its own (start_opendmarc): sign.test publishes "v=DMARC1; p=reject" and
# an SPF record that allows 203.0.113.7 alone. Mail from alice@sign.test:
#  - opendmarc alone, from 203.0.113.7 (SPF passes and aligns): stored with
#    opendmarc's spf=pass and dmarc=pass, our authserv-id;
#  - opendmarc alone, from 198.51.100.9 (SPF fails, nothing else aligns):
#    refused as the policy asks, with opendmarc's reply (550 5.7.1 rejected
#    by DMARC policy for sign.test); nothing queued;
#  - opendkim, then opendmarc, as the example says, from 198.51.100.9, a
#    message signed for sign.test: DKIM aligns, so opendmarc, reading
#    opendkim's Authentication-Results: (our authserv-id, trusted), passes it:
#    stored with dkim=pass and dmarc=pass. A milter sees the header fields the
#    milters before it added, as with Postfix and sendmail; without them
#    opendmarc refuses this message.
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
cat >"$TEST_TMP/zone.json" <<EOF
{"sel._domainkey.sign.test": {"TXT": ["$TXT"]},
 "_dmarc.sign.test": {"TXT": ["v=DMARC1; p=reject"]},
 "sign.test": {"TXT": ["v=spf1 ip4:203.0.113.7 -all"]}}
EOF
start_dns_server "$TEST_TMP/zone.json"
start_opendkim
start_opendmarc "$TEST_TMP/zone.json"

printf 'From: Alice <alice@sign.test>\r\nTo: bob@b.test\r\nSubject: signed\r\nDate: Sun, 06 Dec 2026 09:00:00 +0000\r\nMessage-ID: <t73@sign.test>\r\n\r\nA signed message.\r\n' |
    dkim_sign "$TEST_TMP/keys/sel.private" sign.test sel >"$TEST_TMP/signed.eml"
printf 'From: Alice <alice@sign.test>\r\nTo: bob@b.test\r\nSubject: unsigned\r\nDate: Sun, 06 Dec 2026 09:00:00 +0000\r\nMessage-ID: <t73u@sign.test>\r\n\r\nNot signed.\r\n' \
    >"$TEST_TMP/unsigned.eml"

# auth_results ID: the Authentication-Results: fields of the stored message,
# unfolded.
auth_results()
{
    "$SMTPSPOOL_BIN" cat --spool "$SPOOL" "$1" | tr -d '\r' | sed '/^$/q' |
        sed -e ':a' -e 'N' -e '$!ba' -e 's/\n[ \t]\+/ /g' | grep -i '^Authentication-Results:' || true
}
NL=$'\n'

step "opendmarc alone, SPF aligned: spf=pass, dmarc=pass"
out=$(milter_session "$SPOOL" "$TEST_TMP/unsigned.eml" --milter "unix:$DMARC_SOCKET")
echo "$out"
id=$(queued_as "$out")
assert_ne "" "$id" "queue id of the message"
ar=$(auth_results "$id")
echo "$ar"
assert_match "$ar" "(^|$NL)Authentication-Results: $AUTHSERV_ID; spf=pass smtp\.mailfrom=sign\.test($NL|$)" \
    "the stored Authentication-Results:"
assert_match "$ar" "(^|$NL)Authentication-Results: $AUTHSERV_ID; dmarc=pass \(p=reject dis=none\) header\.from=sign\.test($NL|$)" \
    "the stored Authentication-Results:"
assert_contains "$(cat "$TEST_TMP/zone.json.log")" "_dmarc.sign.test TXT" "the DNS server's queries"

step "opendmarc alone, from a client SPF refuses: refused as p=reject asks"
out=$(MILTER_CLIENT_IP=198.51.100.9 MILTER_CLIENT_NAME=elsewhere.test \
    milter_session "$SPOOL" "$TEST_TMP/unsigned.eml" --milter "unix:$DMARC_SOCKET")
echo "$out"
assert_contains "$out" $'\n550 5.7.1 rejected by DMARC policy for sign.test' "smtpspool's replies"
assert_eq "" "$(queued_as "$out")" "a queue id for the refused message"
assert_eq 1 "$(count_entries "$SPOOL/queue")" "messages in the queue"

step "opendkim, then opendmarc: DKIM aligned from that client, dmarc=pass"
out=$(MILTER_CLIENT_IP=198.51.100.9 MILTER_CLIENT_NAME=elsewhere.test \
    milter_session "$SPOOL" "$TEST_TMP/signed.eml" --milter "unix:$DKIM_SOCKET" --milter "unix:$DMARC_SOCKET")
echo "$out"
id=$(queued_as "$out")
[[ -n "$id" ]] || fail "the signed message was refused: opendmarc did not get opendkim's dkim=pass" \
    "(a milter must see the header fields the milters before it added)"
ar=$(auth_results "$id")
echo "$ar"
assert_match "$ar" "(^|$NL)Authentication-Results: $AUTHSERV_ID; +dkim=pass .*header\.d=sign\.test" \
    "the stored Authentication-Results:"
assert_match "$ar" "(^|$NL)Authentication-Results: $AUTHSERV_ID; dmarc=pass \(p=reject dis=none\) header\.from=sign\.test($NL|$)" \
    "the stored Authentication-Results:"
