#!/usr/bin/env bash
# POST /v1/sms/send: queue one SMS. Usage: ./send_sms.sh +998901234567 "Your order #42 shipped"
. "$(dirname "$0")/_common.sh"
rg_need_token
to="${1:?usage: send_sms.sh <to> <message>}"
message="${2:?usage: send_sms.sh <to> <message>}"

# jq builds the body so quotes and newlines in the message are escaped correctly.
body="$(jq -nc --arg to "$to" --arg message "$message" '{to: $to, message: $message}')"
rg_call POST /v1/sms/send "$body" | jq -r '"\(.status) request_id=\(.request_id)"'
