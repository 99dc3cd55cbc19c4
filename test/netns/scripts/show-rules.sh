#!/usr/bin/env bash
# Usage: sudo test/netns/scripts/show-rules.sh <pod> [--exact] [--help]
#
# Shows remora's iptables rules in a pod with packet/byte counters, IPv4 and IPv6: the jumps from the
# built-in nat chains (PREROUTING, OUTPUT, ...) into REMORA_* chains, then every REMORA_* chain
# (`iptables -t nat -L <chain> -v -n --line-numbers`). The nat table sees the first packet of each
# connection only, so "pkts" on a REDIRECT rule = connections redirected.
#
#   <pod>     client | server (the demo pods) or any network namespace name
#   --exact   exact counters (-x) instead of 1K/1M abbreviations

set -euo pipefail
source "$(dirname "$0")/lib.sh"

POD=""
EXACT=()
for arg in "$@"; do
  case "$arg" in
    -h|--help) usage; exit 0 ;;
    --exact|-x) EXACT=(-x) ;;
    -*) usage >&2; die "unknown option: $arg" ;;
    *) [ -z "$POD" ] || die "one pod only"; POD=$arg ;;
  esac
done
[ -n "$POD" ] || { usage >&2; exit 2; }
need_root
NS=$(resolve_pod "$POD")

show_family() { # iptables | ip6tables
  local ipt=$1 chains builtin lines
  if ! command -v "$ipt" >/dev/null 2>&1; then echo "($ipt not installed)"; return 0; fi
  printf '\n\033[1m### %s -t nat in %s\033[0m\n' "$ipt" "$NS"
  chains=$(ip netns exec "$NS" "$ipt" -t nat -S 2>/dev/null | awk '$1 == "-N" && $2 ~ /^REMORA_/ { print $2 }')
  if [ -z "$chains" ]; then
    echo "no REMORA_ chains (has remora init run in this pod? with --ipv6 off there are no IPv6 rules)"
    return 0
  fi
  for builtin in PREROUTING INPUT OUTPUT POSTROUTING; do
    lines=$(ip netns exec "$NS" "$ipt" -t nat -L "$builtin" -v -n --line-numbers "${EXACT[@]}" 2>/dev/null || true)
    if printf '%s\n' "$lines" | grep -q 'REMORA_'; then
      printf '%s\n' "$lines" | sed -n '1,2p'
      printf '%s\n' "$lines" | grep 'REMORA_'
      echo
    fi
  done
  for c in $chains; do
    ip netns exec "$NS" "$ipt" -t nat -L "$c" -v -n --line-numbers "${EXACT[@]}"
    echo
  done
}

show_family iptables
show_family ip6tables
