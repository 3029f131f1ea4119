#!/usr/bin/env bash
# GET /v1/health (no token): is the gateway up and its database reachable?
# Usage: ./health.sh
. "$(dirname "$0")/_common.sh"

rg_call GET /v1/health | jq -r '"status=\(.status) database=\(.database) version=\(.version)"'
