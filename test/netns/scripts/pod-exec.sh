#!/usr/bin/env bash
# Usage: sudo test/netns/scripts/pod-exec.sh <pod> [--uid N] [--gid N] -- command [args...]
#
# Runs a command inside a pod's network namespace, as root or (with --uid) as another user through
# setpriv (gid defaults to the uid; supplementary groups cleared). Traffic of uid/gid 1337 is not
# redirected by remora's rules, so `--uid 1337` shows what the proxy itself sees.
#
#   <pod>   client | server | server-v2 | control (the demo pods; the last two with --control) or any network namespace name
# Examples:
#   pod-exec.sh client -- curl -sS http://10.250.0.3:8080/
#   pod-exec.sh client --uid 1337 -- curl -sS http://10.250.0.3:8080/
#   pod-exec.sh server -- ss -tnp

set -euo pipefail
source "$(dirname "$0")/lib.sh"

POD=""
UID_=""
GID_=""
while [ $# -gt 0 ]; do
  case "$1" in
    -h|--help) usage; exit 0 ;;
    --uid) [ $# -ge 2 ] || die "--uid needs a value"; UID_=$2; shift 2 ;;
    --uid=*) UID_=${1#--uid=}; shift ;;
    --gid) [ $# -ge 2 ] || die "--gid needs a value"; GID_=$2; shift 2 ;;
    --gid=*) GID_=${1#--gid=}; shift ;;
    --) shift; break ;;
    -*) usage >&2; die "unknown option: $1 (put the command after --)" ;;
    *) [ -z "$POD" ] || die "one pod only (put the command after --)"; POD=$1; shift ;;
  esac
done
[ -n "$POD" ] && [ $# -gt 0 ] || { usage >&2; exit 2; }
[ -z "$UID_" ] || [[ "$UID_" =~ ^[0-9]+$ ]] || die "--uid: a numeric uid"
[ -z "$GID_" ] || [[ "$GID_" =~ ^[0-9]+$ ]] || die "--gid: a numeric gid"
need_root
NS=$(resolve_pod "$POD")

if [ -n "$UID_" ] || [ -n "$GID_" ]; then
  u=${UID_:-0}
  g=${GID_:-$u}
  exec ip netns exec "$NS" setpriv --reuid="$u" --regid="$g" --clear-groups -- "$@"
fi
exec ip netns exec "$NS" "$@"
