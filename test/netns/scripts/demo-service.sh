#!/usr/bin/env bash
# Declare a service with three endpoints in the running demo mesh and watch remora spread connections across them.
#
# Usage: sudo test/netns/scripts/demo-service.sh [--balancer round-robin|least-connections|random|p2c|ring-hash|maglev]
#        sudo test/netns/scripts/demo-service.sh --canary
#
# Needs the demo (demo-up.sh). Starts three small HTTP servers in the server pod (:8081, :8082, :8083, each
# answering with its name), writes /tmp/remora-demo/client.ini with a [service web] whose virtual address
# 10.250.0.100:80 (nothing listens there: only remora knows it) has those three endpoints, restarts the client
# pod's remora with that file, then sends 9 requests to http://10.250.0.100/ and counts which endpoint answered.
# Run it again with another --balancer to compare; demo-down.sh removes everything.
#
# --canary: L7 instead. Endpoints :8081 and :8082 are subset v1, :8083 subset v2; a [route web-canary] sends 90 % of
# the requests to v1 and 10 % to v2, and a request with "x-canary: 1" always to v2. It sends 100 requests on one
# keep-alive connection (balanced per request), one with the header, then moves all traffic to v2 over the admin API
# (POST /routes/web-canary/weights) and sends 10 more; then edits the config file to 50/50 and sends 100 more once the
# proxy has reloaded it (hot reload: no restart, no signal).

set -euo pipefail
# shellcheck source=lib.sh
source "$(dirname "$0")/lib.sh"

balancer=round-robin
canary=no
while [ $# -gt 0 ]; do
  case "$1" in
    -h|--help) usage; exit 0 ;;
    --balancer) [ $# -ge 2 ] || die "--balancer needs a value"; balancer=$2; shift 2 ;;
    --canary) canary=yes; shift ;;
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
if [ "$canary" = yes ]; then
  cat >"$DEMO_DIR/client.ini" <<INI
[service web]
; the address the app dials; remora routes and balances each HTTP request
addresses = $VIP:80
protocol = http
endpoints = $DEMO_SERVER_IP4:8081 subset=v1, $DEMO_SERVER_IP4:8082 subset=v1, $DEMO_SERVER_IP4:8083 subset=v2

[route web-forced]
service = web
match_header = x-canary=1
backends = web subset=v2

[route web-canary]
service = web
backends = web subset=v1 weight=90, web subset=v2 weight=10
retries = 2
retry_on = connect-failure, reset, gateway-error
INI
else
  cat >"$DEMO_DIR/client.ini" <<INI
[service web]
; the address the app dials; remora balances its connections over the endpoints
addresses = $VIP:80
endpoints = $DEMO_SERVER_IP4:8081, $DEMO_SERVER_IP4:8082, $DEMO_SERVER_IP4:8083
balancer = $balancer
INI
fi
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

spread() { sort | uniq -c | sed 's/^ */  /'; }
if [ "$canary" = yes ]; then
  urls=(); for i in $(seq 1 100); do urls+=("http://$VIP/"); done
  step "100 requests on one keep-alive connection to http://$VIP/ (route web-canary: v1 90 %, v2 10 %)"
  ip netns exec "$DEMO_CLIENT_NS" curl -sS --max-time 20 "${urls[@]}" | spread
  step "one request with x-canary: 1 (route web-forced: subset v2)"
  ip netns exec "$DEMO_CLIENT_NS" curl -sS --max-time 5 -H 'x-canary: 1' "http://$VIP/" | sed 's/^/  /'
  step "all traffic to v2 over the admin API: POST /routes/web-canary/weights web/v1=0,web/v2=100"
  ip netns exec "$DEMO_CLIENT_NS" curl -sS --max-time 5 --data-binary 'web/v1=0,web/v2=100' \
    "http://127.0.0.1:$DEMO_ADMIN_PORT/routes/web-canary/weights" | sed 's/^/  /'
  echo
  step "10 more requests"
  ip netns exec "$DEMO_CLIENT_NS" curl -sS --max-time 10 "${urls[@]:0:10}" | spread
  config_version() {
    ip netns exec "$DEMO_CLIENT_NS" curl -s --max-time 2 "http://127.0.0.1:$DEMO_ADMIN_PORT/stats" \
      | node -e 'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>{try{console.log(JSON.parse(s).config.version)}catch{console.log("?")}})'
  }
  before=$(config_version)
  step "hot reload: the file now says v1 50 %, v2 50 % (written in place; the proxy sees the change, no restart, no signal)"
  sed -i 's/^backends = web subset=v1 weight=90, web subset=v2 weight=10$/backends = web subset=v1 weight=50, web subset=v2 weight=50/' \
    "$DEMO_DIR/client.ini"
  for i in $(seq 1 100); do [ "$(config_version)" != "$before" ] && break; sleep 0.1; done
  echo "  config version $before -> $(config_version) (sudo ip netns exec $DEMO_CLIENT_NS curl -s 127.0.0.1:$DEMO_ADMIN_PORT/config_dump)"
  step "100 requests after the reload"
  ip netns exec "$DEMO_CLIENT_NS" curl -sS --max-time 20 "${urls[@]}" | spread
  echo
  echo "  routes: sudo ip netns exec $DEMO_CLIENT_NS curl -s 127.0.0.1:$DEMO_ADMIN_PORT/routes"
  echo "  per-service and per-subset counters: sudo ip netns exec $DEMO_CLIENT_NS curl -s 127.0.0.1:$DEMO_ADMIN_PORT/stats"
  exit 0
fi

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
