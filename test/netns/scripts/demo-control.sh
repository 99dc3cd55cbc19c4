# shellcheck shell=bash disable=SC2034
# Sourced by demo-up.sh --control (not run on its own): the demo's control plane.
#
#   control_up            starts `remora control` in the pod remora-demo-control (10.250.0.6:15012, on the demo's
#                         bridge; no host address, route or iptables rule), writes its tokens and a `remora ctl`
#                         wrapper, applies the mesh's desired state ($DEMO_DIR/mesh.ini) with `remora ctl apply -f`,
#                         and writes each pod's [proxy] section subscribing it (control, control_token, ...)
#   control_wait_synced   waits (bounded) until the three sidecars are SYNCED at the control plane's revision
#   control_canary        counts the client's requests to web v1 and v2, shifts the weights with `remora ctl
#                         set-weights`, counts again (returns 1 when a count is not what the weights say)
#   control_summary       prints the URL, the tokens and how to use `remora ctl` from the host
#
# Uses demo-up.sh's REMORA, step, start_bg, die, MTLS, CLIENT_ID, SERVER_ID; sets CLIENT_ARGS, SERVER_ARGS,
# SERVER2_ARGS.

CONTROL_URL="https://$DEMO_CONTROL_IP4:$DEMO_CONTROL_PORT"
CONTROL_DIR=$DEMO_DIR/control
CONTROL_CTL=$DEMO_DIR/remora-ctl
CONTROL_TOKENS=$DEMO_DIR/control-tokens
SERVER2_ID=spiffe://cluster.local/ns/demo/sa/server-v2
CANARY_REQUESTS=${CANARY_REQUESTS:-40}

ctl() { "$CONTROL_CTL" "$@"; }

new_token() { node -p 'require("node:crypto").randomBytes(16).toString("hex")'; }

control_up() {
  step "control plane: remora control in $DEMO_CONTROL_NS, $CONTROL_URL"
  rm -rf "$CONTROL_DIR" "$DEMO_DIR/identity"
  ADMIN_TOKEN=$(new_token)
  READ_TOKEN=$(new_token)
  SIDECAR_TOKEN=$(new_token)
  (umask 077; printf 'write:%s\nread:%s\nsidecar:%s\n' "$ADMIN_TOKEN" "$READ_TOKEN" "$SIDECAR_TOKEN" >"$CONTROL_TOKENS")
  start_bg control "$DEMO_CONTROL_NS" "${REMORA[@]}" control --data-dir "$CONTROL_DIR" \
    --listen "$DEMO_CONTROL_IP4:$DEMO_CONTROL_PORT" --tokens-file "$CONTROL_TOKENS" --san 127.0.0.1
  local i
  for i in $(seq 1 200); do
    grep -q '"event":"control.listening"' "$DEMO_DIR/control.log" && [ -s "$CONTROL_DIR/root-cert.pem" ] && break
    kill -0 "$(cat "$DEMO_DIR/control.pid")" 2>/dev/null || { tail -n 20 "$DEMO_DIR/control.log" >&2; die "remora control exited"; }
    [ "$i" -eq 200 ] && { tail -n 20 "$DEMO_DIR/control.log" >&2; die "remora control did not listen within 20 s"; }
    sleep 0.1
  done
  echo "  listening (pid $(cat "$DEMO_DIR/control.pid"), log $DEMO_DIR/control.log); data dir $CONTROL_DIR, mesh root $CONTROL_DIR/root-cert.pem"
  echo "  tokens (write, read, sidecar): $CONTROL_TOKENS"

  # The web UI on the host's loopback, https://127.0.0.1:$DEMO_UI_PORT/: inside the control pod a unix socket forwards
  # to the control plane; on the host, 127.0.0.1:$DEMO_UI_PORT forwards to that socket (nothing added to the host's
  # network). The serving certificate carries 127.0.0.1 in its SAN (--san); its root is $CONTROL_DIR/root-cert.pem.
  local sock="$DEMO_DIR/control-ui.sock"
  rm -f "$sock"
  start_bg ui-socket "$DEMO_CONTROL_NS" node -e "$DEMO_FORWARD" "$sock" "$DEMO_CONTROL_IP4:$DEMO_CONTROL_PORT"
  for i in $(seq 1 50); do [ -S "$sock" ] && break; [ "$i" -eq 50 ] && die "the UI socket forwarder did not start ($DEMO_DIR/ui-socket.log)"; sleep 0.1; done
  # (the title "remora-demo-ui-forward" lets demo-down.sh recognize this host process)
  start_bg ui-forward "" node --title=remora-demo-ui-forward -e "process.title='remora-demo-ui-forward';$DEMO_FORWARD" "127.0.0.1:$DEMO_UI_PORT" "$sock"
  for i in $(seq 1 50); do
    [ "$(curl -sk -o /dev/null -w '%{http_code}' --max-time 2 "https://127.0.0.1:$DEMO_UI_PORT/" 2>/dev/null || true)" = 200 ] && break
    [ "$i" -eq 50 ] && die "the web UI does not answer at https://127.0.0.1:$DEMO_UI_PORT/ ($DEMO_DIR/ui-forward.log)"
    sleep 0.1
  done
  echo "  web UI: https://127.0.0.1:$DEMO_UI_PORT/ (forwarded from the host's loopback)"

  # remora ctl from the host: it enters the control pod's namespace (the demo adds nothing to the host's network).
  cat >"$CONTROL_CTL" <<EOF
#!/bin/sh
# remora ctl against the demo's control plane (as root: it runs in the namespace $DEMO_CONTROL_NS). Written by demo-up.sh --control.
exec ip netns exec $DEMO_CONTROL_NS $(command -v node) $REPO_ROOT/bin/remora ctl --server $CONTROL_URL --token $ADMIN_TOKEN --ca-file $CONTROL_DIR/root-cert.pem "\$@"
EOF
  chmod 0700 "$CONTROL_CTL"

  # The mesh's desired state: the same sections a sidecar's own file would hold.
  {
    echo "; the demo mesh's desired state, applied with: remora ctl apply -f $DEMO_DIR/mesh.ini"
    echo "[service web]"
    echo "; the address the client dials; only the sidecars know it"
    echo "addresses = $DEMO_WEB_VIP:$DEMO_WEB_PORT"
    echo "protocol = http"
    echo "endpoints = $DEMO_SERVER_IP4:$DEMO_HTTP_PORT subset=v1, $DEMO_SERVER2_IP4:$DEMO_HTTP_PORT subset=v2"
    if [ "$MTLS" -eq 1 ]; then
      echo "mtls = true"
      echo "identities = $SERVER_ID, $SERVER2_ID"
    fi
    echo
    echo "[route web]"
    echo "service = web"
    echo "backends = web/v1=100, web/v2=0"
    if [ "$MTLS" -eq 1 ]; then
      cat <<EOF

[service demo-server]
addresses = $DEMO_SERVER_IP4:$DEMO_HTTP_PORT, [$DEMO_SERVER_IP6]:$DEMO_HTTP_PORT
endpoints = $DEMO_SERVER_IP4:$DEMO_HTTP_PORT
mtls = true
identities = $SERVER_ID
EOF
      demo_authz_policies
    fi
  } >"$DEMO_DIR/mesh.ini"
  step "remora ctl apply -f $DEMO_DIR/mesh.ini"
  ctl apply -f "$DEMO_DIR/mesh.ini" | sed 's/^/  /'
  [ "${PIPESTATUS[0]}" -eq 0 ] || die "remora ctl apply failed"

  # Each pod's own file: only [proxy], subscribing it (the services and routes come from the control plane).
  local pod id
  for pod in client server server-v2; do
    case "$pod" in client) id=$CLIENT_ID ;; server) id=$SERVER_ID ;; *) id=$SERVER2_ID ;; esac
    {
      echo "; $pod: subscribed to the demo's control plane (the token makes this file secret: mode 0600, owner 1337)"
      echo "[proxy]"
      echo "control = $CONTROL_URL"
      echo "control_token = $SIDECAR_TOKEN"
      echo "control_ca_file = $CONTROL_DIR/root-cert.pem"
      if [ "$MTLS" -eq 1 ]; then
        echo "; the certificate comes from the control plane's CA (a CSR; the key never leaves the pod)"
        echo "identity_dir = $DEMO_DIR/identity/$pod"
        echo "spiffe_id = $id"
        [ "$pod" = client ] || echo "mtls_mode = strict"
      fi
    } >"$DEMO_DIR/$pod.ini"
    if [ "$MTLS" -eq 1 ]; then mkdir -p "$DEMO_DIR/identity/$pod"; chown 1337:1337 "$DEMO_DIR/identity" "$DEMO_DIR/identity/$pod"; fi
    # the proxy reads its file again on every snapshot, after it dropped to uid 1337
    chown 1337:1337 "$DEMO_DIR/$pod.ini"
    chmod 0600 "$DEMO_DIR/$pod.ini"
  done
  echo "  $DEMO_DIR/{client,server,server-v2}.ini: [proxy] control = $CONTROL_URL, control_token, control_ca_file$([ "$MTLS" -eq 1 ] && echo ", identity_dir, spiffe_id")"
  CLIENT_ARGS=(--config "$DEMO_DIR/client.ini")
  SERVER_ARGS=(--config "$DEMO_DIR/server.ini")
  SERVER2_ARGS=(--config "$DEMO_DIR/server-v2.ini")
}

# The control plane's revision when client, server and server-v2 are all connected and SYNCED at it, else nothing.
synced_revision() {
  ctl sidecars -o json 2>/dev/null | node -e '
    let s = ""; process.stdin.on("data", (d) => { s += d; }).on("end", () => {
      try {
        const j = JSON.parse(s);
        const ok = ["client", "server", "server-v2"].every((n) => j.sidecars.some((x) => x.name === n && x.connected && x.status === "SYNCED" && x.versionApplied === j.revision));
        if (ok) console.log(j.revision);
      } catch { /* not up yet */ }
    });' || true
}

control_wait_synced() {
  local i rev
  for i in $(seq 1 60); do
    rev=$(synced_revision)
    if [ -n "$rev" ]; then
      echo "  all three sidecars SYNCED at revision $rev"
      return 0
    fi
    sleep 0.25
  done
  ctl sidecars >&2 || true
  die "the sidecars did not all apply the control plane's revision"
}

# count N: N requests from the client pod to web; sets V1, V2, OTHER
count() {
  local n=$1 i out
  V1=0; V2=0; OTHER=0
  for i in $(seq 1 "$n"); do
    out=$(ip netns exec "$DEMO_CLIENT_NS" curl -sS --max-time 3 "http://$DEMO_WEB_VIP:$DEMO_WEB_PORT/" 2>&1 || true)
    case "$out" in
      *"(web v1)"*) V1=$((V1 + 1)) ;;
      *"(web v2)"*) V2=$((V2 + 1)) ;;
      *) OTHER=$((OTHER + 1)); [ "$OTHER" -eq 1 ] && echo "  unexpected answer: ${out:0:200}" ;;
    esac
  done
  printf '  %d requests from the client pod to web (http://%s/): \033[1mv1 %d, v2 %d\033[0m, other %d\n' "$n" "$DEMO_WEB_VIP" "$V1" "$V2" "$OTHER"
}

control_canary() {
  local ok=1 n=$CANARY_REQUESTS
  step "canary: route web is web/v1=100, web/v2=0 (from mesh.ini)"
  count "$n"
  [ "$V1" -eq "$n" ] || ok=0
  step "remora ctl set-weights web web/v1=50 web/v2=50"
  ctl set-weights web web/v1=50 web/v2=50 | sed 's/^/  /'
  control_wait_synced
  count "$n"
  [ "$V1" -gt 0 ] && [ "$V2" -gt 0 ] && [ "$OTHER" -eq 0 ] || ok=0
  step "remora ctl set-weights web web/v1=0 web/v2=100"
  ctl set-weights web web/v1=0 web/v2=100 | sed 's/^/  /'
  control_wait_synced
  count "$n"
  [ "$V2" -eq "$n" ] || ok=0
  step "remora ctl sidecars"
  ctl sidecars | sed 's/^/  /' || true
  step "remora ctl get routes"
  ctl get routes | sed 's/^/  /' || true
  if [ "$ok" -eq 1 ]; then
    printf '\n\033[32mOK\033[0m: the control plane drives the mesh: each set-weights reached the sidecars and moved the traffic (100/0, then 50/50, then 0/100)\n'
    return 0
  fi
  printf '\n\033[31mNOT CONFIRMED\033[0m: the counts do not follow the weights (logs in %s)\n' "$DEMO_DIR"
  return 1
}

control_summary() {
  cat <<EOF

The web UI: https://127.0.0.1:$DEMO_UI_PORT/ on this machine (log in with a token below; read-only: $READ_TOKEN).
  From another machine: ssh -L $DEMO_UI_PORT:127.0.0.1:$DEMO_UI_PORT root@THIS-HOST, then open the same address.
  The browser warns about the certificate unless the mesh root is trusted: import $CONTROL_DIR/root-cert.pem
  (or accept the warning once; the demo's CA exists only on this machine).

The control plane: $CONTROL_URL (in the namespace $DEMO_CONTROL_NS; log $DEMO_DIR/control.log)
  mesh root: $CONTROL_DIR/root-cert.pem    tokens: $CONTROL_TOKENS (write, read, sidecar)
  write token: $ADMIN_TOKEN
  remora ctl from the host (a wrapper that enters the control pod's namespace with the write token):
    sudo $CONTROL_CTL sidecars
    sudo $CONTROL_CTL set-weights web web/v1=90 web/v2=10
    sudo $CONTROL_CTL get route web -o json
    sudo $CONTROL_CTL diff -f $DEMO_DIR/mesh.ini
  or in full: sudo ip netns exec $DEMO_CONTROL_NS node bin/remora ctl --server $CONTROL_URL \\
                --token \$TOKEN --ca-file $CONTROL_DIR/root-cert.pem get
  count the split: for i in \$(seq 20); do sudo ip netns exec $DEMO_CLIENT_NS curl -s http://$DEMO_WEB_VIP/; done | grep -o 'web v.' | sort | uniq -c
EOF
}
