#!/usr/bin/env bash
# Usage: sudo test/netns/scripts/demo-prometheus.sh [--port PORT] [--requests N] [--help]
#
# Starts a Prometheus (Debian's prometheus package) for the demo mesh of demo-up.sh and leaves it running: a third
# pod (namespace remora-demo-prom, 10.250.0.4 on the demo's bridge) runs prometheus, which scrapes both sidecars'
# metrics listeners (metrics_address 0.0.0.0:15090, GET /stats/prometheus: Istio's istio_* metrics and remora's
# remora_*) every 5 s. Its web UI and HTTP API are forwarded to the host's loopback, 127.0.0.1:PORT (default 19090),
# through a unix socket in /tmp/remora-demo/ (no host route, address or iptables rule is added). Then it sends N
# requests (default 10) from the client pod to the server pod, waits until Prometheus has scraped them, and prints
# the PromQL query `sum by (reporter, response_code) (istio_requests_total)` with its answer.
#
# Needs the demo up (sudo test/netns/scripts/demo-up.sh [--mtls]). Installs prometheus with apt-get when missing.
# Logs: /tmp/remora-demo/prometheus.log. Stop it with demo-down.sh (it removes the Prometheus pod with the rest).

set -euo pipefail
source "$(dirname "$0")/lib.sh"

PORT=19090
REQUESTS=10
while [ $# -gt 0 ]; do
  case "$1" in
    -h|--help) usage; exit 0 ;;
    --port) PORT=${2:?--port needs a value}; shift 2 ;;
    --requests) REQUESTS=${2:?--requests needs a value}; shift 2 ;;
    *) usage >&2; die "unknown argument: $1" ;;
  esac
done
[[ "$PORT" =~ ^[0-9]+$ && "$REQUESTS" =~ ^[0-9]+$ ]] || die "--port and --requests take numbers"
need_root

step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

ns_exists "$DEMO_CLIENT_NS" && ns_exists "$DEMO_SERVER_NS" && ns_exists "$DEMO_HUB_NS" \
  || die "the demo is not up: sudo $SCRIPTS_DIR/demo-up.sh first"
if ns_exists "$DEMO_PROM_NS"; then
  echo "Prometheus is already up for the demo (namespace $DEMO_PROM_NS): http://127.0.0.1:$(cat "$DEMO_DIR/prom-forward.port" 2>/dev/null || echo "$PORT")/"
  echo "To start over: sudo $SCRIPTS_DIR/demo-down.sh && sudo $SCRIPTS_DIR/demo-up.sh && sudo $0"
  exit 1
fi

# The sidecars must serve their metrics on the pod addresses (demo-up.sh starts them with --metrics-address).
for pair in "client:$DEMO_CLIENT_NS" "server:$DEMO_SERVER_NS"; do
  name=${pair%%:*}; ns=${pair#*:}
  ip netns exec "$ns" ss -Hltn "sport = :$DEMO_METRICS_PORT" | grep -q . \
    || die "the $name sidecar does not listen on :$DEMO_METRICS_PORT (a demo brought up by an older demo-up.sh? sudo $SCRIPTS_DIR/demo-up.sh --recreate)"
done

step "checking tools"
if ! command -v prometheus >/dev/null 2>&1; then
  echo "installing prometheus with apt-get"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq || echo "warning: apt-get update failed" >&2
  apt-get install -y -qq --no-install-recommends prometheus >/dev/null || die "apt-get install prometheus failed"
  # the package starts a host prometheus; the demo runs its own inside its pod
  (service prometheus stop >/dev/null 2>&1 || true)
fi
echo "ok: $(prometheus --version 2>&1 | head -n 1)"

# From here on, a failure removes the Prometheus pod again.
SETUP_OK=0
cleanup_partial() {
  [ "$SETUP_OK" -eq 1 ] && return 0
  echo "demo-prometheus failed; removing the Prometheus pod (logs stay in $DEMO_DIR)" >&2
  for f in prometheus prom-socket prom-forward; do
    pid=$(cat "$DEMO_DIR/$f.pid" 2>/dev/null || true)
    [[ "$pid" =~ ^[0-9]+$ ]] && kill "$pid" 2>/dev/null || true
    rm -f "$DEMO_DIR/$f.pid"
  done
  ip netns del "$DEMO_PROM_NS" 2>/dev/null || true
  ip -n "$DEMO_HUB_NS" link del vprom 2>/dev/null || true
}
trap cleanup_partial EXIT

step "creating the Prometheus pod $DEMO_PROM_NS ($DEMO_PROM_IP4 on the demo's bridge)"
ip netns add "$DEMO_PROM_NS"
ip -n "$DEMO_PROM_NS" link set lo up
ip -n "$DEMO_HUB_NS" link add vprom type veth peer name eth0 netns "$DEMO_PROM_NS"
ip -n "$DEMO_HUB_NS" link set vprom master br0 up
ip -n "$DEMO_PROM_NS" addr add "$DEMO_PROM_IP4/24" dev eth0
ip -n "$DEMO_PROM_NS" link set eth0 up


step "starting prometheus in $DEMO_PROM_NS (scraping $DEMO_CLIENT_IP4:$DEMO_METRICS_PORT and $DEMO_SERVER_IP4:$DEMO_METRICS_PORT every 5 s)"
cat >"$DEMO_DIR/prometheus.yml" <<EOF
# demo-prometheus.sh: the demo's two sidecars, Istio's metrics path
global:
  scrape_interval: 5s
  scrape_timeout: 4s
scrape_configs:
  - job_name: remora-demo
    metrics_path: /stats/prometheus
    static_configs:
      - targets: ['$DEMO_CLIENT_IP4:$DEMO_METRICS_PORT']
        labels: { pod: client }
      - targets: ['$DEMO_SERVER_IP4:$DEMO_METRICS_PORT']
        labels: { pod: server }
EOF
rm -rf "$DEMO_DIR/prom-data"
mkdir -p "$DEMO_DIR/prom-data"
start_bg prometheus "$DEMO_PROM_NS" prometheus --config.file="$DEMO_DIR/prometheus.yml" \
  --storage.tsdb.path="$DEMO_DIR/prom-data" --web.listen-address=127.0.0.1:9090 --log.level=warn

# The UI on the host's loopback without touching the host's network: inside the pod, a unix socket forwards to
# 127.0.0.1:9090; on the host, 127.0.0.1:PORT forwards to that socket (unix sockets cross network namespaces).
SOCK="$DEMO_DIR/prometheus.sock"
rm -f "$SOCK"
start_bg prom-socket "$DEMO_PROM_NS" node -e "$DEMO_FORWARD" "$SOCK" 127.0.0.1:9090
for i in $(seq 1 50); do [ -S "$SOCK" ] && break; [ "$i" -eq 50 ] && die "the socket forwarder did not start ($DEMO_DIR/prom-socket.log)"; sleep 0.1; done
# (the title "remora-demo-prom-forward" lets demo-down.sh recognize this host process)
start_bg prom-forward "" node --title=remora-demo-prom-forward -e "process.title='remora-demo-prom-forward';$DEMO_FORWARD" "127.0.0.1:$PORT" "$SOCK"
echo "$PORT" >"$DEMO_DIR/prom-forward.port"
URL="http://127.0.0.1:$PORT"

api() { curl -sS --max-time 5 "$@"; }
for i in $(seq 1 150); do
  [ "$(api -o /dev/null -w '%{http_code}' "$URL/-/ready" 2>/dev/null || true)" = 200 ] && break
  [ "$i" -eq 150 ] && { tail -n 20 "$DEMO_DIR/prometheus.log" >&2; die "prometheus not ready at $URL within 30 s"; }
  sleep 0.2
done
echo "  prometheus ready (pid $(cat "$DEMO_DIR/prometheus.pid"), log $DEMO_DIR/prometheus.log), UI and API at $URL"

# query PROMQL: the result vector, one "labels value" line per series (labels as JSON)
query() {
  api -G "$URL/api/v1/query" --data-urlencode "query=$1" | node -e '
    let s = ""; process.stdin.on("data", (d) => { s += d; }).on("end", () => {
      const j = JSON.parse(s);
      if (j.status !== "success") { console.error(s); process.exit(1); }
      for (const r of j.data.result) console.log(`${JSON.stringify(r.metric)} ${r.value[1]}`);
    });'
}

step "waiting for both sidecars to be scraped (up{job=\"remora-demo\"} = 1)"
for i in $(seq 1 60); do
  up=$(query 'sum(up{job="remora-demo"})' 2>/dev/null | awk '{print $NF}' || true)
  [ "$up" = 2 ] && break
  [ "$i" -eq 60 ] && die "Prometheus did not scrape both sidecars within 30 s (up = ${up:-none}; targets: $URL/targets)"
  sleep 0.5
done
echo "  both targets up"

before=$(query 'sum(istio_requests_total{reporter="source"})' | awk '{print $NF}')
before=${before:-0}
step "sending $REQUESTS requests: client pod -> http://$DEMO_SERVER_IP4:$DEMO_HTTP_PORT/ (through both sidecars)"
codes=$(for _ in $(seq 1 "$REQUESTS"); do
  ip netns exec "$DEMO_CLIENT_NS" curl -sS -o /dev/null -w '%{http_code}\n' --max-time 5 "http://$DEMO_SERVER_IP4:$DEMO_HTTP_PORT/" || echo failed
done | sort | uniq -c | awk '{printf "%s x %s  ", $1, $2}')
echo "  answers: $codes"

step "waiting for the next scrape to count them"
want=$((${before%.*} + REQUESTS))
for i in $(seq 1 60); do
  now=$(query 'sum(istio_requests_total{reporter="source"})' | awk '{print $NF}')
  [ "${now%.*}" -ge "$want" ] 2>/dev/null && break
  [ "$i" -eq 60 ] && die "istio_requests_total{reporter=\"source\"} is ${now:-absent}, expected at least $want after 30 s"
  sleep 0.5
done
SETUP_OK=1

Q='sum by (reporter, response_code) (istio_requests_total)'
step "PromQL: $Q"
echo "  curl -sG $URL/api/v1/query --data-urlencode 'query=$Q'"
query "$Q" | sed 's/^/  /'
Q2='sum by (source_workload, destination_workload, destination_service_name, connection_security_policy) (istio_requests_total{reporter="destination"})'
step "PromQL: $Q2"
query "$Q2" | sed 's/^/  /'

cat <<EOF

Prometheus stays up: open $URL/ (Graph: try istio_requests_total, istio_request_duration_milliseconds_bucket,
remora_endpoint_picks_total; Status > Targets shows the two sidecars). From the host:
  curl -sG $URL/api/v1/query --data-urlencode 'query=sum by (response_code) (rate(istio_requests_total[1m]))'
  curl -s http://127.0.0.1:$PORT/api/v1/targets | head -c 600
The scraped endpoints themselves (Istio's metrics port, only GET /stats/prometheus):
  sudo ip netns exec $DEMO_PROM_NS curl -s http://$DEMO_CLIENT_IP4:$DEMO_METRICS_PORT/stats/prometheus | grep ^istio_requests_total
Stop: sudo $SCRIPTS_DIR/demo-down.sh (removes the Prometheus pod with the demo)
EOF
