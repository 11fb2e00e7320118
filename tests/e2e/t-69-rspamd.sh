#!/bin/bash
# rspamd in milter mode (--milter inet:127.0.0.1:PORT): its proxy worker,
# scanning by itself, configured by examples/milters/rspamd-milter/ over
# Debian's /etc/rspamd (start_rspamd: only ports, directories, log and name
# servers changed). From a network client:
#  - the GTUBE test message is refused with rspamd's reply (554 5.7.1 Gtube
#    pattern), nothing queued;
#  - a clean message is stored with the header fields the example asks for:
#    X-Spamd-Result, X-Spam-Status: No, X-Rspamd-Queue-Id with our queue id.
# shellcheck source=tests/e2e/lib.sh
source "$(dirname "$0")/lib.sh"
# shellcheck source=tests/e2e/deliverylib.sh
source "$E2E_DIR/deliverylib.sh"
# shellcheck source=tests/e2e/milterlib.sh
source "$E2E_DIR/milterlib.sh"
need_daemon /usr/bin/rspamd
need_dnslib

SPOOL=$TEST_TMP/spool
# The sender's domain and the client's name resolve and SPF allows the
# client, as for mail from a well-kept server; every other name rspamd asks
# about (block lists and the like) does not exist. (Without them the clean
# message scores 4 to 8 points: "X-Spam: Yes".)
cat >"$TEST_TMP/zone.json" <<'EOF'
{"sign.test": {"A": ["203.0.113.7"], "MX": [[10, "client.sign.test"]], "TXT": ["v=spf1 ip4:203.0.113.7 -all"]},
 "client.sign.test": {"A": ["203.0.113.7"]}}
EOF
start_dns_server "$TEST_TMP/zone.json"
start_rspamd
MILTER=(--milter "inet:127.0.0.1:$RSPAMD_PORT")

printf 'From: alice@sign.test\r\nTo: bob@b.test\r\nSubject: GTUBE\r\nDate: Sun, 06 Dec 2026 09:00:00 +0000\r\nMessage-ID: <gtube@sign.test>\r\n\r\nXJS*C4JDBQADN1.NSBN3*2IDNEN*GTUBE-STANDARD-ANTI-UBE-TEST-EMAIL*C.34X\r\n' \
    >"$TEST_TMP/gtube.eml"
printf 'From: Alice <alice@sign.test>\r\nTo: Bob <bob@b.test>\r\nSubject: lunch\r\nDate: Sun, 06 Dec 2026 09:00:00 +0000\r\nMessage-ID: <clean@sign.test>\r\n\r\nShall we meet at noon?\r\n' \
    >"$TEST_TMP/clean.eml"

step "GTUBE: refused with rspamd's reply"
out=$(milter_session "$SPOOL" "$TEST_TMP/gtube.eml" "${MILTER[@]}")
echo "$out"
assert_contains "$out" $'\n554 5.7.1 Gtube pattern' "smtpspool's replies"
assert_eq "" "$(queued_as "$out")" "a queue id for GTUBE"
assert_eq 0 "$(count_entries "$SPOOL/queue")" "messages in the queue"

step "a clean message: stored with rspamd's header fields"
out=$(milter_session "$SPOOL" "$TEST_TMP/clean.eml" "${MILTER[@]}")
echo "$out"
id=$(queued_as "$out")
assert_ne "" "$id" "queue id of the clean message"
header=$("$SMTPSPOOL_BIN" cat --spool "$SPOOL" "$id" | tr -d '\r' | sed '/^$/q')
echo "$header"
assert_match "$header" $'(^|\n)X-Spamd-Result: default: False \\[' "the stored header"
assert_contains "$header" "R_SPF_ALLOW" "the stored header (rspamd's SPF check, through the test's DNS server)"
assert_match "$header" $'(^|\n)X-Spam-Status: No, score=' "the stored header"
assert_match "$header" $'(^|\n)X-Rspamd-Queue-Id: '"$id"$'(\n|$)' "the stored header"
assert_not_contains "$header" "X-Spam: Yes" "the stored header"
