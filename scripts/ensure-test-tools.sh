#!/usr/bin/env bash
# Installs the system tools the tests drive (real iptables, curl, servers, clients) when they are missing.
# Runs before `npm test`. Only as root and only for what is missing; prints what it installs. Set
# REMORA_NO_APT=1 to skip (the netns tests then skip outside CI, or fail in CI, naming what is missing).
set -euo pipefail
[ "${REMORA_NO_APT:-}" = 1 ] && exit 0
need=()
for pair in iptables:iptables ip:iproute2 curl:curl setpriv:util-linux nc:netcat-openbsd ss:iproute2 \
            redis-server:redis-server redis-cli:redis-tools nginx:nginx-light openssl:openssl \
            socat:socat conntrack:conntrack dnsmasq:dnsmasq-base nghttp:nghttp2-client h2load:nghttp2-client \
            tcpdump:tcpdump mariadbd:mariadb-server mariadb:mariadb-client chromium:chromium etcd:etcd-server; do
  cmd=${pair%%:*}; pkg=${pair#*:}
  command -v "$cmd" >/dev/null 2>&1 || [ -x "/usr/sbin/$cmd" ] || need+=("$pkg")
done
[ ${#need[@]} -eq 0 ] && exit 0
pkgs=$(printf '%s\n' "${need[@]}" | sort -u | tr '\n' ' ')
if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1; then
  echo "remora tests: missing tools ($pkgs); install them (Debian: apt-get install $pkgs) to run the netns tests" >&2
  exit 0
fi
echo "remora tests: installing missing tools: $pkgs" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq >/dev/null
# shellcheck disable=SC2086
apt-get install -y -qq --no-install-recommends $pkgs >/dev/null
# Packaged servers must not keep running on the host; the tests start their own inside namespaces.
for svc in nginx redis-server mariadb etcd; do (service "$svc" stop >/dev/null 2>&1 || true); done
