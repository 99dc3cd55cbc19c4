# shellcheck shell=bash disable=SC2034
# Shared by the debug scripts in this directory (sourced, not run). Bash; the caller sets -euo pipefail.

DEMO_CLIENT_NS=remora-demo-client
DEMO_SERVER_NS=remora-demo-server
DEMO_HUB_NS=remora-demo-hub
DEMO_PROM_NS=remora-demo-prom
DEMO_PROM_IP4=10.250.0.4
# demo-up.sh --control: a second server version and the control plane, on the same bridge
DEMO_SERVER2_NS=remora-demo-server-v2
DEMO_SERVER2_IP4=10.250.0.5
DEMO_SERVER2_IP6=fd52:250::5
DEMO_CONTROL_NS=remora-demo-control
DEMO_CONTROL_IP4=10.250.0.6
DEMO_CONTROL_IP6=fd52:250::6
DEMO_CONTROL_PORT=15012
# the web UI of the demo's control plane, forwarded to the host's loopback
DEMO_UI_PORT=19012
# the web service's address (a virtual IP only the sidecars know; on the pods' subnet so the kernel routes it)
DEMO_WEB_VIP=10.250.0.100
DEMO_WEB_PORT=80
DEMO_DIR=/tmp/remora-demo
DEMO_CLIENT_IP4=10.250.0.2
DEMO_SERVER_IP4=10.250.0.3
DEMO_CLIENT_IP6=fd52:250::2
DEMO_SERVER_IP6=fd52:250::3
DEMO_HTTP_PORT=8080
DEMO_ADMIN_PORT=15000
# Each sidecar also serves GET /stats/prometheus (only that) here, on the pod address, for a Prometheus outside the
# pod (metrics_address; Istio's port); remora init excludes it from inbound capture.
DEMO_METRICS_PORT=15090

SCRIPTS_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO_ROOT=$(cd "$SCRIPTS_DIR/../../.." && pwd)

die() { echo "$(basename "$0"): $*" >&2; exit 1; }

# Print the usage comment at the top of the calling script (the lines after the shebang up to the first blank line).
usage() { sed -n '2,/^$/{s/^# \{0,1\}//;p}' "$0"; }

need_root() {
  [ "$(id -u)" -eq 0 ] || die "needs root (network namespaces, iptables): run it with sudo"
}

ns_exists() { ip netns list 2>/dev/null | awk '{print $1}' | grep -qx -- "$1"; }

# "client"/"server" -> the demo namespaces; anything else is taken as a namespace name (e.g. a test run's
# rmr1234-abc-client). Fails when the namespace does not exist.
resolve_pod() {
  local name=$1 ns
  case "$name" in
    client) ns=$DEMO_CLIENT_NS ;;
    server) ns=$DEMO_SERVER_NS ;;
    server-v2) ns=$DEMO_SERVER2_NS ;;
    control) ns=$DEMO_CONTROL_NS ;;
    *) ns=$name ;;
  esac
  ns_exists "$ns" || die "no network namespace \"$ns\" (is the demo up? sudo $SCRIPTS_DIR/demo-up.sh; or list them: ip netns list)"
  printf '%s\n' "$ns"
}

# start_bg NAME NS CMD...: CMD detached from this shell, in NS ("" = the host); its pid (CMD's, after exec) in
# $DEMO_DIR/NAME.pid, its output appended to $DEMO_DIR/NAME.log.
start_bg() {
  local name=$1 ns=$2; shift 2
  : >"$DEMO_DIR/$name.log"
  rm -f "$DEMO_DIR/$name.pid"
  local enter=()
  [ -n "$ns" ] && enter=(ip netns exec "$ns")
  setsid -f "${enter[@]}" sh -c 'echo $$ >"$1"; log=$2; shift 2; exec "$@" >>"$log" 2>&1 </dev/null' \
    sh "$DEMO_DIR/$name.pid" "$DEMO_DIR/$name.log" "$@"
  local i
  for i in $(seq 1 50); do [ -s "$DEMO_DIR/$name.pid" ] && return 0; sleep 0.1; done
  die "$name did not start (see $DEMO_DIR/$name.log)"
}

# A byte forwarder for `node -e "$DEMO_FORWARD" FROM TO`; FROM and TO are HOST:PORT or a unix socket path. The demo
# reaches a pod's port from the host's loopback through a unix socket (sockets cross network namespaces), so
# nothing is added to the host's network.
DEMO_FORWARD='const net = require("node:net"); const [from, to] = process.argv.slice(1);
const ep = (s) => { const m = /^(.*):(\d+)$/.exec(s); return m ? { host: m[1], port: Number(m[2]) } : { path: s }; };
const server = net.createServer((c) => { const u = net.connect(ep(to)); c.pipe(u).pipe(c); c.on("error", () => u.destroy()); u.on("error", () => c.destroy()); });
server.listen(ep(from));'

# The demo server's authorization policies (--mtls), the same in its own file and in the control plane's state:
# the client's identity may GET and HEAD anything but /admin.
demo_authz_policies() {
  cat <<EOF

[authorization no-admin]
action = deny
paths = /admin, /admin/*

[authorization demo-client]
action = allow
from_identities = $CLIENT_ID
methods = GET, HEAD
EOF
}
