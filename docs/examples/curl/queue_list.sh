#!/usr/bin/env bash
# POST /v1/recipient-lists/queue: queue a whole recipient list, every number its own message.
# Usage: ./queue_list.sh lst_01HV... "Hi {name}, our {city} shop is open on Sunday"
. "$(dirname "$0")/_common.sh"
rg_need_token
list_id="${1:?usage: queue_list.sh <list_id> <message>}"
message="${2:?usage: queue_list.sh <list_id> <message>}"

body="$(jq -nc --arg list_id "$list_id" --arg message "$message" '{list_id: $list_id, message: $message}')"
# A retry with the same Idempotency-Key never queues the list twice.
key="$(cat /proc/sys/kernel/random/uuid 2>/dev/null || date +%s%N)"
RG_EXTRA_HEADER="Idempotency-Key: $key" rg_call POST /v1/recipient-lists/queue "$body" |
  jq -r '"\(.status) batch_id=\(.batch_id) queued=\(.queued) skipped=\(.skipped_total)",
         (.skipped[] | "  skipped \(.phone) (\(.reason))")'
