#!/usr/bin/env bash
# Verify a relaygate webhook (Standard Webhooks) with openssl: feed it the raw body and the
# three headers your web server received. Exit 0 = genuine, 1 = reject (answer 401).
# Usage: RELAYGATE_WEBHOOK_SECRET=whsec_... ./verify_webhook.sh body.json "$WEBHOOK_ID" "$WEBHOOK_TIMESTAMP" "$WEBHOOK_SIGNATURE"
set -euo pipefail
body_file="${1:?usage: verify_webhook.sh <body-file> <webhook-id> <webhook-timestamp> <webhook-signature>}"
msg_id="${2:?missing webhook-id}"
timestamp="${3:?missing webhook-timestamp}"
signatures="${4:?missing webhook-signature}"
secret="${RELAYGATE_WEBHOOK_SECRET:?set RELAYGATE_WEBHOOK_SECRET to the endpoint secret (whsec_...)}"

reject() { echo "rejected: $1" >&2; exit 1; }

[[ "$timestamp" =~ ^[0-9]+$ ]] || reject "bad timestamp"
now="$(date +%s)"
(( timestamp > now - 300 && timestamp < now + 300 )) || reject "timestamp too far from now"

# The key is the base64 part of whsec_...; openssl wants it as hex.
key_hex="$(printf '%s' "${secret#whsec_}" | base64 -d | od -An -tx1 -v | tr -d ' \n')"
expected="$( { printf '%s.%s.' "$msg_id" "$timestamp"; cat "$body_file"; } |
  openssl dgst -sha256 -mac HMAC -macopt "hexkey:${key_hex}" -binary | base64 | tr -d '\n')"

# During a secret rotation the header carries several "v1,<sig>" separated by spaces.
for candidate in $signatures; do
  if [[ "$candidate" == "v1,${expected}" ]]; then
    echo "verified $(jq -r .type "$body_file") id=${msg_id}"
    exit 0
  fi
done
reject "no matching signature"
