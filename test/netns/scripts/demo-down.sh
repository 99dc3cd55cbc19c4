#!/usr/bin/env bash
# Usage: sudo test/netns/scripts/demo-down.sh [--purge] [--help]
#
# Tears down what demo-up.sh (with --control too) and demo-prometheus.sh built: stops the processes it started (pid files in /tmp/remora-demo/, then
# anything still running inside the demo namespaces), deletes the namespaces remora-demo-client,
# remora-demo-server, remora-demo-server-v2, remora-demo-control, remora-demo-prom and remora-demo-hub (with them go their interfaces and iptables rules). Safe to run
# twice; does nothing when the demo is not up. Keeps the logs in /tmp/remora-demo/ unless --purge.

set -euo pipefail
source "$(dirname "$0")/lib.sh"

PURGE=0
for arg in "$@"; do
  case "$arg" in
    -h|--help) usage; exit 0 ;;
    --purge) PURGE=1 ;;
    *) usage >&2; die "unknown argument: $arg" ;;
  esac
done
need_root

DEMO_NAMESPACES=("$DEMO_CLIENT_NS" "$DEMO_SERVER_NS" "$DEMO_SERVER2_NS" "$DEMO_CONTROL_NS" "$DEMO_PROM_NS" "$DEMO_HUB_NS")

# The namespace a pid lives in, as `ip netns identify` names it (empty when none/gone).
ns_of() { ip netns identify "$1" 2>/dev/null || true; }

is_demo_ns() {
  local n
  for n in "${DEMO_NAMESPACES[@]}"; do [ "$1" = "$n" ] && return 0; done
  return 1
}

# Stop one pid: SIGTERM, wait up to 5 s (the proxy drains), then SIGKILL. Called in the background, one per pid.
stop_pid() {
  local pid=$1 what=$2 _
  kill -TERM "$pid" 2>/dev/null || return 0
  for _ in $(seq 1 50); do
    kill -0 "$pid" 2>/dev/null || { echo "stopped $what (pid $pid)"; return 0; }
    sleep 0.1
  done
  kill -KILL "$pid" 2>/dev/null || true
  echo "killed $what (pid $pid) after 5 s"
}

# 1. The processes demo-up.sh recorded, only if the pid still belongs to a demo namespace (pids get reused).
if [ -d "$DEMO_DIR" ]; then
  for f in "$DEMO_DIR"/*.pid; do
    [ -e "$f" ] || continue
    pid=$(cat "$f" 2>/dev/null || true)
    name=$(basename "$f" .pid)
    if [[ "$pid" =~ ^[0-9]+$ ]] && kill -0 "$pid" 2>/dev/null && is_demo_ns "$(ns_of "$pid")"; then
      stop_pid "$pid" "$name" &
    elif [[ "$name" == *-forward ]] && [[ "$pid" =~ ^[0-9]+$ ]] && tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -q "remora-demo-$name"; then
      # the forwarders of demo-prometheus.sh and of the control plane's UI run on the host (127.0.0.1:PORT -> a unix socket into a pod)
      stop_pid "$pid" "$name"
    fi
    rm -f "$f"
  done
  wait  # the proxies drain in parallel (each up to 5 s), not one after the other
fi

# 2. Anything else still running inside the demo namespaces (started there by the demo or by hand).
for ns in "${DEMO_NAMESPACES[@]}"; do
  ns_exists "$ns" || continue
  for pid in $(ip netns pids "$ns" 2>/dev/null || true); do
    stop_pid "$pid" "process in $ns" &
  done
done
wait

# 3. The namespaces (their veths, bridge, addresses and iptables rules go with them).
deleted=0
for ns in "${DEMO_NAMESPACES[@]}"; do
  if ns_exists "$ns"; then
    ip netns del "$ns"
    echo "deleted namespace $ns"
    deleted=1
  fi
done
[ "$deleted" -eq 1 ] || echo "no demo namespaces (already down)"

if [ "$PURGE" -eq 1 ]; then
  rm -rf "$DEMO_DIR"
  echo "removed $DEMO_DIR"
elif [ -d "$DEMO_DIR" ]; then
  echo "logs kept in $DEMO_DIR (--purge removes them)"
fi
