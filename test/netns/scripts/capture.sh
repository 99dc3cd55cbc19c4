#!/usr/bin/env bash
# Usage: sudo test/netns/scripts/capture.sh <pod> [--lo] [-c COUNT] [--timeout SECONDS] [-w FILE] [tcpdump filter...]
#
# Captures packets on the pod's eth0 with tcpdump (numeric, line-buffered), bounded: stops after COUNT
# packets (default 200) or SECONDS (default 60), whichever comes first.
#
#   <pod>            client | server (the demo pods) or any network namespace name
#   --lo             capture on eth0 AND lo (tcpdump -i any): shows the hop into the proxy's
#                    listener too (outbound redirects go over lo)
#   -c COUNT         stop after COUNT packets (1-100000)
#   --timeout S      stop after S seconds (1-3600)
#   -w FILE          write a pcap file instead of printing
#   filter           a tcpdump filter, e.g.: port 8080 or port 15006
# Example: capture.sh server --lo -c 50 port 8080 or port 15006    (then curl from another terminal)

set -euo pipefail
source "$(dirname "$0")/lib.sh"

POD=""
IFACE=eth0
COUNT=200
TIMEOUT=60
WRITE=()
FILTER=()
while [ $# -gt 0 ]; do
  case "$1" in
    -h|--help) usage; exit 0 ;;
    --lo) IFACE=any; shift ;;
    -c) [ $# -ge 2 ] || die "-c needs a value"; COUNT=$2; shift 2 ;;
    --timeout) [ $# -ge 2 ] || die "--timeout needs a value"; TIMEOUT=$2; shift 2 ;;
    -w) [ $# -ge 2 ] || die "-w needs a file"; WRITE=(-w "$2"); shift 2 ;;
    --) shift; FILTER+=("$@"); break ;;
    -*) usage >&2; die "unknown option: $1" ;;
    *) if [ -z "$POD" ]; then POD=$1; else FILTER+=("$1"); fi; shift ;;
  esac
done
[ -n "$POD" ] || { usage >&2; exit 2; }
[[ "$COUNT" =~ ^[0-9]+$ ]] && [ "$COUNT" -ge 1 ] && [ "$COUNT" -le 100000 ] || die "-c: 1-100000"
[[ "$TIMEOUT" =~ ^[0-9]+$ ]] && [ "$TIMEOUT" -ge 1 ] && [ "$TIMEOUT" -le 3600 ] || die "--timeout: 1-3600 seconds"
need_root
command -v tcpdump >/dev/null 2>&1 || die "tcpdump is not installed (apt-get install tcpdump)"
NS=$(resolve_pod "$POD")

echo "capturing in $NS on $([ "$IFACE" = any ] && echo 'eth0 + lo (any)' || echo eth0), at most $COUNT packets / ${TIMEOUT}s${FILTER[*]:+, filter: ${FILTER[*]}}" >&2
rc=0
timeout --signal=INT "$TIMEOUT" ip netns exec "$NS" tcpdump -i "$IFACE" -nn -l -c "$COUNT" "${WRITE[@]}" "${FILTER[@]}" || rc=$?
# 124 = the timeout ended it: a bounded capture, not a failure
[ "$rc" -eq 124 ] && rc=0
exit "$rc"
