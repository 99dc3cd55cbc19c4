#!/usr/bin/env bash
# Declare a service with three endpoints in the running demo mesh and watch remora spread connections across them.
#
# Usage: sudo test/netns/scripts/demo-service.sh [--balancer round-robin|least-connections|random|p2c|ring-hash|maglev]
#
# Needs the demo (demo-up.sh). Starts three small HTTP servers in the server pod (:8081, :8082, :8083, each
# answering with its name), writes /tmp/remora-demo/client.ini with a [service web] whose virtual address
# 10.250.0.100:80 (nothing listens there: only remora knows it) has those three endpoints, restarts the client
# pod's remora with that file, then sends 9 requests to http://10.250.0.100/ and counts which endpoint answered.
# Run it again with another --balancer to compare; demo-down.sh removes everything.

set -euo pipefail
# shellcheck source=lib.sh
source "$(dirname "$0")/lib.sh"

balancer=round-robin
while [ $# -gt 0 ]; do
  case "$1" in
    -h|--help) usage; exit 0 ;;
    --balancer) [ $# -ge 2 ] || die "--balancer needs a value"; balancer=$2; shift 2 ;;
    *) die "unknown argument: $1 (see --help)" ;;
  esac
done
need_root
ns_exists "$DEMO_CLIENT_NS" && ns_exists "$DEMO_SERVER_NS" || die "the demo is not up: sudo $SCRIPTS_DIR/demo-up.sh"
VIP=10.250.0.100
step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

# Start (or keep) the three endpoint servers in the server pod.
for n in 1 2 3; do
  port=$((8080 + n)); name=endpoint-$n
  if ip netns exec "$DEMO_SERVER_NS" ss -Hltn "sport = :$port" | grep -q .; then continue; fi
  setsid -f ip netns exec "$DEMO_SERVER_NS" sh -c 'echo $$ >"$1"; shift; exec "$@" >/dev/null 2>&1 </dev/null' \
    sh "$DEMO_DIR/$name.pid" node -e '
      require("node:http").createServer((req, res) => res.end(`${process.argv[1]}\n`)).listen(Number(process.argv[2]), "::");' \
    "$name" "$port"
done
for n in 1 2 3; do
  for i in $(seq 1 50); do
    ip netns exec "$DEMO_SERVER_NS" ss -Hltn "sport = :$((8080 + n))" | grep -q . && break
    [ "$i" -eq 50 ] && die "endpoint-$n did not start listening on :$((8080 + n))"
    sleep 0.1
  done
done
echo "endpoints: $DEMO_SERVER_IP4:8081, :8082, :8083 (in $DEMO_SERVER_NS)"

step "client pod's config: $DEMO_DIR/client.ini"
cat >"$DEMO_DIR/client.ini" <<INI
[service web]
; the address the app dials; remora balances its connections over the endpoints
addresses = $VIP:80
endpoints = $DEMO_SERVER_IP4:8081, $DEMO_SERVER_IP4:8082, $DEMO_SERVER_IP4:8083
balancer = $balancer
INI
sed 's/^/  /' "$DEMO_DIR/client.ini"

step "restarting the client pod's remora with --config $DEMO_DIR/client.ini"
if [ -s "$DEMO_DIR/client.pid" ]; then
  pid=$(cat "$DEMO_DIR/client.pid")
  kill "$pid" 2>/dev/null || true
  for i in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
fi
: >"$DEMO_DIR/client.log"
setsid -f ip netns exec "$DEMO_CLIENT_NS" sh -c 'echo $$ >"$1"; log=$2; shift 2; exec "$@" >>"$log" 2>&1 </dev/null' \
  sh "$DEMO_DIR/client.pid" "$DEMO_DIR/client.log" "$(command -v node)" "$REPO_ROOT/bin/remora" proxy --log-level debug \
  --config "$DEMO_DIR/client.ini"
for i in $(seq 1 150); do
  [ "$(ip netns exec "$DEMO_CLIENT_NS" curl -s --max-time 1 "http://127.0.0.1:$DEMO_ADMIN_PORT/ready" 2>/dev/null || true)" = ready ] && break
  [ "$i" -eq 150 ] && { tail -n 20 "$DEMO_DIR/client.log" >&2; die "the client remora did not become ready"; }
  sleep 0.1
done
echo "  ready (pid $(cat "$DEMO_DIR/client.pid"))"

step "9 requests from the client pod to http://$VIP/ (balancer $balancer)"
declare -A seen=()
for i in $(seq 1 9); do
  answer=$(ip netns exec "$DEMO_CLIENT_NS" curl -sS --max-time 5 "http://$VIP/" 2>&1 || true)
  echo "  request $i -> $answer"
  seen[$answer]=$(( ${seen[$answer]:-0} + 1 ))
done
step "spread"
for k in "${!seen[@]}"; do echo "  $k: ${seen[$k]}"; done | sort
echo
echo "  per-service counters: sudo ip netns exec $DEMO_CLIENT_NS curl -s 127.0.0.1:$DEMO_ADMIN_PORT/stats"
