#!/usr/bin/env bash
# Usage: sudo test/netns/scripts/conntrack.sh <pod> [--all] [--help]
#
# Lists the pod's conntrack entries (`conntrack -L`, IPv4 and IPv6). By default only the NAT'd ones
# (`--dst-nat`: the connections remora's REDIRECT rules sent to the proxy; the reply tuple shows the
# proxy's port 15001/15006 instead of the original destination). --all lists every entry.
#
#   <pod>   client | server (the demo pods) or any network namespace name

set -euo pipefail
source "$(dirname "$0")/lib.sh"

POD=""
ALL=0
for arg in "$@"; do
  case "$arg" in
    -h|--help) usage; exit 0 ;;
    --all) ALL=1 ;;
    -*) usage >&2; die "unknown option: $arg" ;;
    *) [ -z "$POD" ] || die "one pod only"; POD=$arg ;;
  esac
done
[ -n "$POD" ] || { usage >&2; exit 2; }
need_root
command -v conntrack >/dev/null 2>&1 || die "conntrack is not installed (apt-get install conntrack)"
NS=$(resolve_pod "$POD")

for fam in ipv4 ipv6; do
  if [ "$ALL" -eq 1 ]; then
    printf '\033[1m### conntrack -L -f %s in %s\033[0m\n' "$fam" "$NS"
    ip netns exec "$NS" conntrack -L -f "$fam" 2>&1 || true
  else
    printf '\033[1m### conntrack -L -f %s --dst-nat in %s (redirected connections)\033[0m\n' "$fam" "$NS"
    ip netns exec "$NS" conntrack -L -f "$fam" --dst-nat 2>&1 || true
  fi
  echo
done
