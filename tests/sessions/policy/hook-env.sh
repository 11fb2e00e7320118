#!/bin/sh
# A mail hook that refuses with the facts it was given, to show them; the
# parent's environment (TCPREMOTEIP and the like) must not reach it.
echo "550 5.7.1 stage=$SMTPSPOOL_STAGE client=$SMTPSPOOL_CLIENT_ADDRESS helo=$SMTPSPOOL_HELO sender=$SMTPSPOOL_SENDER tls=$SMTPSPOOL_TLS relay=$SMTPSPOOL_RELAY tcp=${TCPREMOTEIP:-unset}"
exit 1
