#!/usr/bin/env bash
# POST /v1/otp/verify: check the code the user typed. Exit 0 only on "success".
# Usage: ./verify_otp.sh otp_01H... 123456
. "$(dirname "$0")/_common.sh"
rg_need_token
otp_id="${1:?usage: verify_otp.sh <otp_id> <code>}"
code="${2:?usage: verify_otp.sh <otp_id> <code>}"

body="$(jq -nc --arg otp_id "$otp_id" --arg code "$code" '{otp_id: $otp_id, code: $code}')"
answer="$(rg_call POST /v1/otp/verify "$body")"
jq -r '"status=\(.status) attempts_left=\(.attempts_left)" + (if .reason then " reason=\(.reason)" else "" end)' <<<"$answer"
[[ "$(jq -r .status <<<"$answer")" == "success" ]]
