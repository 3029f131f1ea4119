# Shared by the relaygate cURL examples: base URL, token and one error printer.
# Needs curl and jq. Source it: . "$(dirname "$0")/_common.sh"
set -euo pipefail

RELAYGATE_BASE_URL="${RELAYGATE_BASE_URL:-http://127.0.0.1:8080/api}"

# rg_call METHOD PATH [JSON_BODY] -> prints the JSON answer on success; on an API error prints
# "error <code>: <message>" to stderr and exits 1. RG_EXTRA_HEADER adds one header (e.g. an
# Idempotency-Key).
rg_call() {
  local method="$1" path="$2" body="${3:-}" out status
  local args=(-sS -X "$method" -o - -w '\n%{http_code}' -H 'Accept: application/json')
  if [[ -n "${RELAYGATE_TOKEN:-}" ]]; then
    args+=(-H "Authorization: Bearer ${RELAYGATE_TOKEN}")
  fi
  if [[ -n "$body" ]]; then
    args+=(-H 'Content-Type: application/json' --data-binary "$body")
  fi
  if [[ -n "${RG_EXTRA_HEADER:-}" ]]; then
    args+=(-H "$RG_EXTRA_HEADER")
  fi
  out="$(curl "${args[@]}" "${RELAYGATE_BASE_URL}${path}")" || { echo "error: cannot reach ${RELAYGATE_BASE_URL}" >&2; exit 1; }
  status="${out##*$'\n'}"
  out="${out%$'\n'*}"
  if [[ "$status" != 2* ]] || [[ "$(jq -r '.ok' <<<"$out" 2>/dev/null)" != "true" ]]; then
    if jq -e '.error.code' >/dev/null 2>&1 <<<"$out"; then
      jq -r '"error \(.error.code): \(.error.message)"' <<<"$out" >&2
      jq -c '.error.details // empty' <<<"$out" >&2
    else
      echo "error: HTTP ${status}: ${out}" >&2
    fi
    exit 1
  fi
  printf '%s\n' "$out"
}

rg_need_token() {
  : "${RELAYGATE_TOKEN:?set RELAYGATE_TOKEN to your access token (rgat_...)}"
}
