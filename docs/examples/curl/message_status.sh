#!/usr/bin/env bash
# GET /v1/messages/status: where is my message? Usage: ./message_status.sh req_01H...
. "$(dirname "$0")/_common.sh"
rg_need_token
request_id="${1:?usage: message_status.sh <request_id>}"

rg_call GET "/v1/messages/status?request_id=$(jq -rn --arg v "$request_id" '$v|@uri')" |
  jq -r '"status=\(.status) attempts=\(.attempts) device=\(.device_name // "-") failure_reason=\(.failure_reason // "-")"'
