#!/usr/bin/env bash
# A two-node Ray cluster on this machine: a head and one worker node (separate raylets, as on two
# machines), for trying `--runner ray --address` and for ablate's multi-node tests.
#
#   runners/local-cluster.sh start     # prints the address to pass to --address
#   ablate run quickstart --runner ray --address 127.0.0.1:6379
#   runners/local-cluster.sh stop
#
# Settings (environment): ABLATE_RAY_PORT (6379), ABLATE_RAY_CPUS per node (1),
# ABLATE_RAY_STORE_MB object store per node (100), ABLATE_RAY_GPUS per node (0).
set -euo pipefail

port="${ABLATE_RAY_PORT:-6379}"
cpus="${ABLATE_RAY_CPUS:-1}"
gpus="${ABLATE_RAY_GPUS:-0}"
store_mb="${ABLATE_RAY_STORE_MB:-100}"
address="127.0.0.1:${port}"
# this cluster's own folder: its sessions and logs, and how `stop` finds its processes (and only
# them: `ray stop` would also end every other Ray on the machine)
tmp="${ABLATE_RAY_TMP:-/tmp/ablate-ray-${port}}"
common=(--num-cpus "$cpus" --num-gpus "$gpus" --object-store-memory "$((store_mb * 1024 * 1024))"
        --temp-dir "$tmp" --disable-usage-stats)
# both nodes authenticate with the token Ray keeps in ~/.ray/auth_token (or $RAY_AUTH_TOKEN_PATH)
if [[ -n "${RAY_AUTH_TOKEN:-}" || -f "${RAY_AUTH_TOKEN_PATH:-$HOME/.ray/auth_token}" ]]; then
  export RAY_AUTH_MODE="${RAY_AUTH_MODE:-token}"
fi

case "${1:-}" in
  start)
    ray start --head --node-ip-address 127.0.0.1 --port "$port" --include-dashboard false "${common[@]}" >/dev/null
    ray start --address "$address" --node-ip-address 127.0.0.1 "${common[@]}" >/dev/null
    echo "$address"
    ;;
  stop)
    # this cluster's processes: named with its folder on their command line, or (Ray's agents,
    # which rename themselves) holding a log file open in it
    ours() {
      { pgrep -f -- "$tmp" || true
        for d in /proc/[0-9]*; do
          if ls -l "$d/fd" 2>/dev/null | grep -q -- "$tmp/"; then echo "${d#/proc/}"; fi
        done; } | { grep -vx "$$" || true; } | sort -u
    }
    pids=$(ours)
    [[ -z "$pids" ]] && exit 0
    kill $pids 2>/dev/null || true
    for _ in 1 2 3 4 5 6 7 8 9 10; do
      sleep 1
      pids=$(ours)
      [[ -z "$pids" ]] && exit 0
    done
    kill -9 $pids 2>/dev/null || true
    ;;
  status)
    ray status --address "$address"
    ;;
  *)
    echo "usage: $0 start|stop|status" >&2
    exit 2
    ;;
esac
