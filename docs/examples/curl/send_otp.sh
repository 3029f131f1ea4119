#!/usr/bin/env bash
# POST /v1/otp/send: text a one-time code. Usage: ./send_otp.sh +998901234567 [purpose]
. "$(dirname "$0")/_common.sh"
rg_need_token
to="${1:?usage: send_otp.sh <to> [purpose]}"
purpose="${2:-login}"

body="$(jq -nc --arg to "$to" --arg purpose "$purpose" '{to: $to, purpose: $purpose, expires_in_seconds: 300}')"
rg_call POST /v1/otp/send "$body" |
  jq -r '"otp_id=\(.otp_id) status=\(.status) expires_in_seconds=\(.expires_in_seconds)"'
