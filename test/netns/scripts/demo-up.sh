#!/usr/bin/env bash
# Usage: sudo test/netns/scripts/demo-up.sh [--mtls] [--control] [--recreate] [--help]      (or: sudo npm run demo)
#
# Brings up a demo mesh and leaves it running: two pods (network namespaces remora-demo-client and
# remora-demo-server, joined by a bridge in remora-demo-hub; 10.250.0.0/24 and fd52:250::/64, which exist
# only inside these namespaces), `remora init` rules and a `remora proxy` in both pods, an HTTP server
# (nginx, or node when nginx is missing) on :8080 in the server pod. Then it sends one request from the
# client pod to the server pod and shows that it went through remora on both sides.
#
# Installs missing tools with apt-get, runs `npm ci` when node_modules/ or dist/ is missing. Logs and pid
# files: /tmp/remora-demo/. Tear down with test/netns/scripts/demo-down.sh.
#
#   --mtls       mesh security: a CA (remora ca) gives both pods SPIFFE identities, the client reaches the server
#                over mutual TLS, the server accepts only mTLS (mtls_mode = strict) and an authorization policy; the
#                script then shows accepted and refused requests (docs/security.md)
#   --control    a control plane (remora control, in pod remora-demo-control, 10.250.0.6:15012) drives the mesh: a
#                second server version (pod remora-demo-server-v2), every sidecar subscribed ([proxy] control), the
#                services and a route applied with `remora ctl apply -f`; then a canary shift with `remora ctl
#                set-weights` moves the client's requests from v1 to v2, counted (docs/demo.md, docs/control-plane.md).
#                With --mtls the sidecars get their certificates from the control plane's CA by CSR (spiffe_id).
#   --recreate   if the demo is already up, tear it down first (default: refuse)

set -euo pipefail
source "$(dirname "$0")/lib.sh"

RECREATE=0
MTLS=0
CONTROL=0
for arg in "$@"; do
  case "$arg" in
    -h|--help) usage; exit 0 ;;
    --recreate) RECREATE=1 ;;
    --mtls) MTLS=1 ;;
    --control) CONTROL=1 ;;
    *) usage >&2; die "unknown argument: $arg" ;;
  esac
done

need_root

step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

# --- already up? ---------------------------------------------------------------------------------------------
if ns_exists "$DEMO_CLIENT_NS" || ns_exists "$DEMO_SERVER_NS" || ns_exists "$DEMO_HUB_NS" || ns_exists "$DEMO_SERVER2_NS" || ns_exists "$DEMO_CONTROL_NS"; then
  if [ "$RECREATE" -eq 1 ]; then
    step "demo already up: tearing it down first (--recreate)"
    "$SCRIPTS_DIR/demo-down.sh"
  else
    echo "The demo is already up (namespaces remora-demo-*). Use it, or:"
    echo "  sudo $SCRIPTS_DIR/demo-down.sh            # tear down"
    echo "  sudo $SCRIPTS_DIR/demo-up.sh --recreate   # tear down and bring up again"
    exit 1
  fi
fi

# --- tools ---------------------------------------------------------------------------------------------------
step "checking tools"
need_pkgs=()
for pair in ip:iproute2 iptables:iptables curl:curl setpriv:util-linux tcpdump:tcpdump conntrack:conntrack \
            nginx:nginx-light ss:iproute2; do
  cmd=${pair%%:*}; pkg=${pair#*:}
  command -v "$cmd" >/dev/null 2>&1 || need_pkgs+=("$pkg")
done
if [ ${#need_pkgs[@]} -gt 0 ]; then
  pkgs=$(printf '%s\n' "${need_pkgs[@]}" | sort -u | tr '\n' ' ')
  echo "installing with apt-get: $pkgs"
  if command -v apt-get >/dev/null 2>&1; then
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq || echo "warning: apt-get update failed" >&2
    # shellcheck disable=SC2086
    apt-get install -y -qq --no-install-recommends $pkgs >/dev/null || echo "warning: apt-get install failed" >&2
    # a freshly installed nginx package starts a host nginx; the demo runs its own inside the server pod
    case " $pkgs " in *" nginx-light "*) (service nginx stop >/dev/null 2>&1 || true) ;; esac
  else
    echo "warning: no apt-get; install these yourself: $pkgs" >&2
  fi
fi
for cmd in ip iptables curl setpriv node; do
  command -v "$cmd" >/dev/null 2>&1 || die "missing $cmd"
done
node_major=$(node -p 'process.versions.node.split(".")[0]')
[ "$node_major" -ge 20 ] || die "needs Node.js 20 or newer (found $(node -v))"
echo "ok: node $(node -v), $(ip -V), $(iptables -V)"

# --- build ---------------------------------------------------------------------------------------------------
cd "$REPO_ROOT"
if [ ! -d node_modules ]; then
  step "npm ci (node_modules/ missing)"
  npm ci --no-audit --no-fund || echo "warning: npm ci reported an error (type errors still emit dist/)" >&2
fi
if [ ! -f dist/src/cli/main.js ]; then
  step "building dist/ (missing)"
  npx tsc -p . || echo "warning: tsc reported errors (it still emits dist/)" >&2
fi
[ -f dist/src/cli/main.js ] || die "dist/src/cli/main.js is missing after the build"
REMORA=("$(command -v node)" "$REPO_ROOT/bin/remora")

# From here on, a failure tears down what was built.
SETUP_OK=0
on_exit() {
  if [ "$SETUP_OK" -eq 0 ]; then
    echo >&2
    echo "demo-up failed; removing the partial demo (logs stay in $DEMO_DIR)" >&2
    "$SCRIPTS_DIR/demo-down.sh" >/dev/null 2>&1 || true
  fi
}
trap on_exit EXIT

mkdir -p "$DEMO_DIR"
rm -f "$DEMO_DIR"/*.pid

# --- namespaces ----------------------------------------------------------------------------------------------
if [ "$CONTROL" -eq 1 ]; then
  step "creating namespaces $DEMO_CLIENT_NS, $DEMO_SERVER_NS, $DEMO_SERVER2_NS, $DEMO_CONTROL_NS (hub $DEMO_HUB_NS with bridge br0)"
else
  step "creating namespaces $DEMO_CLIENT_NS, $DEMO_SERVER_NS (hub $DEMO_HUB_NS with bridge br0)"
fi
ip netns add "$DEMO_HUB_NS"
ip -n "$DEMO_HUB_NS" link set lo up
ip -n "$DEMO_HUB_NS" link add br0 type bridge
ip -n "$DEMO_HUB_NS" link set br0 up
add_pod() { # ns hub-side-ifname ip4 ip6
  local ns=$1 hif=$2 ip4=$3 ip6=$4
  ip netns add "$ns"
  ip -n "$ns" link set lo up
  ip -n "$DEMO_HUB_NS" link add "$hif" type veth peer name eth0 netns "$ns"
  ip -n "$DEMO_HUB_NS" link set "$hif" master br0 up
  ip -n "$ns" addr add "$ip4/24" dev eth0
  ip -n "$ns" addr add "$ip6/64" dev eth0 nodad
  ip -n "$ns" link set eth0 up
  echo "  $ns: eth0 $ip4/24 $ip6/64"
}
add_pod "$DEMO_CLIENT_NS" vclient "$DEMO_CLIENT_IP4" "$DEMO_CLIENT_IP6"
add_pod "$DEMO_SERVER_NS" vserver "$DEMO_SERVER_IP4" "$DEMO_SERVER_IP6"
PODS=("$DEMO_CLIENT_NS" "$DEMO_SERVER_NS")
INIT_ARGS=()
if [ "$CONTROL" -eq 1 ]; then
  add_pod "$DEMO_SERVER2_NS" vserver2 "$DEMO_SERVER2_IP4" "$DEMO_SERVER2_IP6"
  add_pod "$DEMO_CONTROL_NS" vcontrol "$DEMO_CONTROL_IP4" "$DEMO_CONTROL_IP6"
  PODS+=("$DEMO_SERVER2_NS")
  # The sidecar fetches its first certificate (CSR) before it drops to uid 1337: the control port is not captured.
  INIT_ARGS=(--exclude-outbound-ports "$DEMO_CONTROL_PORT")
fi

# --- remora init ---------------------------------------------------------------------------------------------
for ns in "${PODS[@]}"; do
  step "remora init in $ns"
  # warn level keeps the rule dump out of the way; show-rules.sh prints the rules with counters
  # the metrics port is not captured (Istio excludes 15090 the same way): a Prometheus outside the pod scrapes it
  ip netns exec "$ns" "${REMORA[@]}" init --log-level warn --exclude-inbound-ports "$DEMO_METRICS_PORT" "${INIT_ARGS[@]}"
  echo "  rules applied and verified (IPv4 and IPv6): outbound TCP -> 15001, inbound TCP -> 15006 (but :$DEMO_METRICS_PORT), uid/gid 1337 excluded"
done

# --- processes -----------------------------------------------------------------------------------------------
wait_ready() { # ns name
  local i
  for i in $(seq 1 150); do
    if [ "$(ip netns exec "$1" curl -s --max-time 1 "http://127.0.0.1:$DEMO_ADMIN_PORT/ready" 2>/dev/null || true)" = ready ]; then
      echo "  $2 ready (pid $(cat "$DEMO_DIR/$2.pid"), log $DEMO_DIR/$2.log)"
      return 0
    fi
    kill -0 "$(cat "$DEMO_DIR/$2.pid")" 2>/dev/null || { tail -n 20 "$DEMO_DIR/$2.log" >&2; die "$2 exited"; }
    sleep 0.1
  done
  tail -n 20 "$DEMO_DIR/$2.log" >&2
  die "$2: /ready did not answer 200 within 15 s"
}

CLIENT_ARGS=()
SERVER_ARGS=()
SERVER2_ARGS=()
CLIENT_ID=spiffe://cluster.local/ns/demo/sa/client
SERVER_ID=spiffe://cluster.local/ns/demo/sa/server
if [ "$CONTROL" -eq 1 ]; then
  source "$SCRIPTS_DIR/demo-control.sh"
  control_up
elif [ "$MTLS" -eq 1 ]; then
  step "mesh security: a CA and an identity for each pod (remora ca)"
  rm -rf "$DEMO_DIR/ca" "$DEMO_DIR/identity"
  "${REMORA[@]}" ca init --dir "$DEMO_DIR/ca" --trust-domain cluster.local | sed 's/^/  /'
  "${REMORA[@]}" ca issue --dir "$DEMO_DIR/ca" --spiffe-id "$CLIENT_ID" --out "$DEMO_DIR/identity/client" | sed 's/^/  /'
  "${REMORA[@]}" ca issue --dir "$DEMO_DIR/ca" --spiffe-id "$SERVER_ID" --out "$DEMO_DIR/identity/server" | sed 's/^/  /'
  # The proxy reads its identity again on every rotation, after it dropped to uid 1337.
  chown -R 1337:1337 "$DEMO_DIR/identity"
  cat >"$DEMO_DIR/client.ini" <<EOF
; remora-demo-client: the server pod's port $DEMO_HTTP_PORT is a service reached over mesh mTLS
[proxy]
identity_dir = $DEMO_DIR/identity/client

[service demo-server]
addresses = $DEMO_SERVER_IP4:$DEMO_HTTP_PORT, [$DEMO_SERVER_IP6]:$DEMO_HTTP_PORT
endpoints = $DEMO_SERVER_IP4:$DEMO_HTTP_PORT
mtls = true
identities = $SERVER_ID
EOF
  cat >"$DEMO_DIR/server.ini" <<EOF
; remora-demo-server: inbound accepts mesh mTLS only; the client's identity may GET anything but /admin
[proxy]
identity_dir = $DEMO_DIR/identity/server
mtls_mode = strict
EOF
  demo_authz_policies >>"$DEMO_DIR/server.ini"
  chmod 0644 "$DEMO_DIR/client.ini" "$DEMO_DIR/server.ini"
  echo "  $DEMO_DIR/client.ini: [service demo-server] mtls = true, identities = $SERVER_ID"
  echo "  $DEMO_DIR/server.ini: mtls_mode = strict; [authorization no-admin] denies /admin; [authorization demo-client] allows GET from $CLIENT_ID"
  CLIENT_ARGS=(--config "$DEMO_DIR/client.ini")
  SERVER_ARGS=(--config "$DEMO_DIR/server.ini")
fi

step "starting remora proxy in both pods (as root; it drops to uid/gid 1337)"
# --access-log: one JSON line per request and per TCP connection (Envoy's fields), written in batches
# --metrics-address: Istio's metrics (only GET /stats/prometheus) on the pod address, for demo-prometheus.sh
start_bg client "$DEMO_CLIENT_NS" env POD_NAME=client "${REMORA[@]}" proxy --log-level debug --access-log "$DEMO_DIR/client-access.log" --metrics-address "0.0.0.0:$DEMO_METRICS_PORT" --workload-name client --workload-namespace demo "${CLIENT_ARGS[@]}"
start_bg server "$DEMO_SERVER_NS" env POD_NAME=server "${REMORA[@]}" proxy --log-level debug --access-log "$DEMO_DIR/server-access.log" --metrics-address "0.0.0.0:$DEMO_METRICS_PORT" --workload-name server --workload-namespace demo "${SERVER_ARGS[@]}"
wait_ready "$DEMO_CLIENT_NS" client
if [ "$CONTROL" -eq 1 ]; then
  start_bg server-v2 "$DEMO_SERVER2_NS" env POD_NAME=server-v2 "${REMORA[@]}" proxy --log-level debug --access-log "$DEMO_DIR/server-v2-access.log" --metrics-address "0.0.0.0:$DEMO_METRICS_PORT" --workload-name server-v2 --workload-namespace demo "${SERVER2_ARGS[@]}"
fi
wait_ready "$DEMO_SERVER_NS" server
if [ "$CONTROL" -eq 1 ]; then
  wait_ready "$DEMO_SERVER2_NS" server-v2
  control_wait_synced
fi

# start_http NAME NS WHO: nginx (or node) on :$DEMO_HTTP_PORT in NS, answering "hello from WHO ..."
start_http() {
  local name=$1 ns=$2 who=$3 i
  if command -v nginx >/dev/null 2>&1; then
    mkdir -p "$DEMO_DIR/$name-tmp"
    cat >"$DEMO_DIR/$name.conf" <<EOF
daemon off;
master_process off;
worker_processes 1;
pid $DEMO_DIR/$name-tmp/nginx.pid;
error_log $DEMO_DIR/$name.log info;
events { worker_connections 1024; }
http {
  access_log $DEMO_DIR/$name.log;
  client_body_temp_path $DEMO_DIR/$name-tmp;
  proxy_temp_path $DEMO_DIR/$name-tmp;
  fastcgi_temp_path $DEMO_DIR/$name-tmp;
  uwsgi_temp_path $DEMO_DIR/$name-tmp;
  scgi_temp_path $DEMO_DIR/$name-tmp;
  default_type text/plain;
  server {
    listen $DEMO_HTTP_PORT;
    listen [::]:$DEMO_HTTP_PORT;
    location / { return 200 "hello from $who (nginx): you are \$remote_addr:\$remote_port, you dialed \$server_addr:\$server_port\nx-forwarded-client-cert: \$http_x_forwarded_client_cert\n"; }
  }
}
EOF
    start_bg "$name" "$ns" nginx -c "$DEMO_DIR/$name.conf" -e "$DEMO_DIR/$name.log"
    http_kind=nginx
  else
    start_bg "$name" "$ns" node -e '
      require("node:http").createServer((req, res) => {
        console.log(`${req.socket.remoteAddress}:${req.socket.remotePort} ${req.method} ${req.url}`);
        res.end(`hello from ${process.argv[2]} (node): you are ${req.socket.remoteAddress}:${req.socket.remotePort}, you dialed ${req.socket.localAddress}:${req.socket.localPort}\n`);
      }).listen(Number(process.argv[1]), "::");' "$DEMO_HTTP_PORT" "$who"
    http_kind=node
  fi
  for i in $(seq 1 50); do
    ip netns exec "$ns" ss -Hltn "sport = :$DEMO_HTTP_PORT" | grep -q . && break
    [ "$i" -eq 50 ] && { tail -n 20 "$DEMO_DIR/$name.log" >&2; die "the HTTP server in $ns does not listen on :$DEMO_HTTP_PORT"; }
    sleep 0.1
  done
  echo "  $http_kind listening in $ns (pid $(cat "$DEMO_DIR/$name.pid"), log $DEMO_DIR/$name.log)"
}
if [ "$CONTROL" -eq 1 ]; then
  step "starting HTTP servers on :$DEMO_HTTP_PORT: web v1 in $DEMO_SERVER_NS, web v2 in $DEMO_SERVER2_NS"
  start_http http "$DEMO_SERVER_NS" "remora-demo-server (web v1)"
  start_http http-v2 "$DEMO_SERVER2_NS" "remora-demo-server-v2 (web v2)"
else
  step "starting an HTTP server on :$DEMO_HTTP_PORT in $DEMO_SERVER_NS"
  start_http http "$DEMO_SERVER_NS" remora-demo-server
fi
SETUP_OK=1

# --- show one request going through both proxies -------------------------------------------------------------
# accepted NS LISTENER: the listener's accepted-connection counter from /stats
accepted() {
  local body
  body=$(ip netns exec "$1" curl -s --max-time 2 "http://127.0.0.1:$DEMO_ADMIN_PORT/stats" || true)
  printf '%s' "$body" | node -e 'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>{try{const j=JSON.parse(s);console.log(j.listeners?.[process.argv[1]]?.connections?.accepted ?? 0)}catch{console.log("?")}})' "$2"
}
c_before=$(accepted "$DEMO_CLIENT_NS" outbound)
s_before=$(accepted "$DEMO_SERVER_NS" inbound)
c_log_lines=$(wc -l <"$DEMO_DIR/client.log")
s_log_lines=$(wc -l <"$DEMO_DIR/server.log")

step "request: ip netns exec $DEMO_CLIENT_NS curl -sS -v http://$DEMO_SERVER_IP4:$DEMO_HTTP_PORT/"
curl_ok=1
ip netns exec "$DEMO_CLIENT_NS" curl -sS -v --max-time 5 "http://$DEMO_SERVER_IP4:$DEMO_HTTP_PORT/" 2>&1 | sed 's/^/  /' || curl_ok=0
step "request over IPv6: curl -sS http://[$DEMO_SERVER_IP6]:$DEMO_HTTP_PORT/"
ip netns exec "$DEMO_CLIENT_NS" curl -sS --max-time 5 "http://[$DEMO_SERVER_IP6]:$DEMO_HTTP_PORT/" 2>&1 | sed 's/^/  /' || curl_ok=0
sleep 0.3

c_after=$(accepted "$DEMO_CLIENT_NS" outbound)
s_after=$(accepted "$DEMO_SERVER_NS" inbound)

step "client pod's remora (outbound listener :15001): log lines written during the requests"
tail -n +"$((c_log_lines + 1))" "$DEMO_DIR/client.log" | head -n 12 | cut -c1-400 | sed 's/^/  /' || true
step "server pod's remora (inbound listener :15006): log lines written during the requests"
tail -n +"$((s_log_lines + 1))" "$DEMO_DIR/server.log" | head -n 12 | cut -c1-400 | sed 's/^/  /' || true

step "/stats counters"
echo "  client remora, outbound connections accepted: $c_before -> $c_after"
echo "  server remora, inbound connections accepted:  $s_before -> $s_after"
echo "  full: ip netns exec $DEMO_CLIENT_NS curl -s 127.0.0.1:$DEMO_ADMIN_PORT/stats"
ip netns exec "$DEMO_CLIENT_NS" curl -s --max-time 2 "http://127.0.0.1:$DEMO_ADMIN_PORT/stats" | sed 's/^/  /' || true; echo

step "access logs (one JSON line per request; batched, so read after a moment): $DEMO_DIR/client-access.log, server-access.log"
for i in $(seq 1 20); do [ -s "$DEMO_DIR/server-access.log" ] && break; sleep 0.1; done
tail -n 1 "$DEMO_DIR/client-access.log" 2>/dev/null | cut -c1-400 | sed 's/^/  client: /' || true
tail -n 1 "$DEMO_DIR/server-access.log" 2>/dev/null | cut -c1-400 | sed 's/^/  server: /' || true

step "remora explain: the path of that request from the client pod (rule, listener, protocol, service, endpoint)"
ip netns exec "$DEMO_CLIENT_NS" "${REMORA[@]}" explain --dst "$DEMO_SERVER_IP4:$DEMO_HTTP_PORT" --path / 2>&1 | head -n 30 | sed 's/^/  /' || true

verdict=0
if [ "$curl_ok" -eq 1 ] && [[ "$c_before" =~ ^[0-9]+$ && "$c_after" =~ ^[0-9]+$ && "$s_before" =~ ^[0-9]+$ && "$s_after" =~ ^[0-9]+$ ]] \
   && [ "$c_after" -gt "$c_before" ] && [ "$s_after" -gt "$s_before" ]; then
  printf '\n\033[32mOK\033[0m: curl (client pod) -> iptables REDIRECT -> remora :15001 (client pod) -> server pod -> iptables REDIRECT -> remora :15006 (server pod) -> %s :%s\n' "$http_kind" "$DEMO_HTTP_PORT"
else
  printf '\n\033[31mNOT CONFIRMED\033[0m: the requests did not show up on both proxies (see the logs above and in %s)\n' "$DEMO_DIR"
  verdict=1
fi

if [ "$MTLS" -eq 1 ]; then
  step "mesh mTLS"
  echo "  the requests above went: client remora -> TLS 1.3 (ALPN remora, both certificates verified) -> server remora;"
  echo "  nginx saw the client's SPIFFE ID in x-forwarded-client-cert (URI=...)"
  step "accepted and refused requests"
  mtls_ok=1
  show() { # label expected cmd...
    local label=$1 expect=$2 out; shift 2
    out=$("$@" 2>&1 | head -n 2 | tr '\n' ' ' || true)
    printf '  %-60s %s\n' "$label" "${out:0:100}"
    case "$out" in *"$expect"*) ;; *) mtls_ok=0 ;; esac
  }
  url="http://$DEMO_SERVER_IP4:$DEMO_HTTP_PORT"
  show "client pod, GET /        (mTLS; allowed by demo-client):" "hello from" \
    ip netns exec "$DEMO_CLIENT_NS" curl -sS --max-time 5 "$url/"
  show "client pod, GET /admin   (mTLS; denied by no-admin):" "RBAC: access denied" \
    ip netns exec "$DEMO_CLIENT_NS" curl -sS --max-time 5 "$url/admin"
  show "client pod, POST /       (mTLS; no allow policy matches):" "RBAC: access denied" \
    ip netns exec "$DEMO_CLIENT_NS" curl -sS --max-time 5 -X POST "$url/"
  show "client pod as uid 1337   (plaintext, no sidecar; strict):" "curl: (" \
    ip netns exec "$DEMO_CLIENT_NS" setpriv --reuid=1337 --regid=1337 --clear-groups -- curl -sS --max-time 5 "$url/"
  sleep 0.3
  step "server remora: /certs (identity, trust bundle, expiry)"
  ip netns exec "$DEMO_SERVER_NS" curl -s --max-time 2 "http://127.0.0.1:$DEMO_ADMIN_PORT/certs" | head -n 24 | sed 's/^/  /' || true
  step "server remora: /stats mtls and authz counters"
  ip netns exec "$DEMO_SERVER_NS" curl -s --max-time 2 "http://127.0.0.1:$DEMO_ADMIN_PORT/stats" \
    | node -e 'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>{const j=JSON.parse(s);console.log("  mtls:  "+JSON.stringify(j.mtls));console.log("  authz: "+JSON.stringify(j.authz))})' || true
  if [ "$mtls_ok" -eq 1 ]; then
    printf '\n\033[32mOK\033[0m: mTLS between the sidecars; strict refused plaintext; the policies allowed GET / and denied /admin and POST\n'
  else
    printf '\n\033[31mNOT CONFIRMED\033[0m: a request did not answer as expected (logs in %s)\n' "$DEMO_DIR"
    verdict=1
  fi
fi

if [ "$CONTROL" -eq 1 ]; then
  control_canary || verdict=1
fi

cat <<EOF

The demo stays up. Next things to try:
  sudo $SCRIPTS_DIR/pod-exec.sh client -- curl -sS http://$DEMO_SERVER_IP4:$DEMO_HTTP_PORT/
  sudo $SCRIPTS_DIR/pod-exec.sh client --uid 1337 -- curl -sS http://$DEMO_SERVER_IP4:$DEMO_HTTP_PORT/   # uid 1337 bypasses the client's remora
  sudo $SCRIPTS_DIR/show-rules.sh client          # remora's iptables chains with packet counters (v4 and v6)
  sudo $SCRIPTS_DIR/conntrack.sh server           # the NAT'd (redirected) connections
  sudo $SCRIPTS_DIR/capture.sh server --lo port $DEMO_HTTP_PORT or port 15006   # then curl again from another terminal
  sudo ip netns exec $DEMO_CLIENT_NS curl -s 127.0.0.1:$DEMO_ADMIN_PORT/stats     # client proxy counters
  tail -f $DEMO_DIR/client.log $DEMO_DIR/server.log $DEMO_DIR/http.log
  sudo $SCRIPTS_DIR/demo-prometheus.sh            # a Prometheus scraping both sidecars, with a PromQL example
  sudo $SCRIPTS_DIR/demo-down.sh                  # tear everything down
EOF
if [ "$CONTROL" -eq 1 ]; then control_summary; fi
exit "$verdict"
