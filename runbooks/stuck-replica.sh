#!/usr/bin/env bash
# stuck-replica.sh — which replicas are stuck in a full sync, and the safe order to get them out.
# Pushes nothing. Needs kvr only (jq if installed). See --help.
set -euo pipefail
RB_NAME=stuck-replica.sh
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

usage() {
  cat <<'EOF2'
Usage: stuck-replica.sh [options] SEED

Looks at every node of the cluster SEED (host:port of any live node) belongs to (kvr doctor,
read-only) and, for each replica stuck in a full sync — master_sync_in_progress:1 and no I/O
from its master growing without bound — and each node that no longer answers, explains the
safe order: its master back, or the node restarted, first; topology only after. A Kvrocks
build without the fetch read deadline (before PR #2662) freezes for good on the next CLUSTERX
SETNODES or SLAVEOF while such a sync hangs. This script pushes nothing.

Options:
  --samples N       doctor looks at each node N times (default 2: the stall shows as growth)
  --interval D      time between the looks (default 2s)
  --timeout D       connect and reply deadline per node (default 3s)
  --stuck-after D   a sync with no I/O for this long is stuck even in one look (default 10s)
  -h, --help        this text

Environment: KVR (the kvr executable, default kvr on PATH), KVR_AUTH (the nodes' password).

Exit codes:
  0  no node is stuck in a full sync or frozen (nodes that could not be reached are named)
  1  a node is stuck in a full sync or frozen: do what is printed, then run this again
  2  usage error, or kvr not found
  4  SEED did not answer: nothing could be looked at

Example:
  runbooks/stuck-replica.sh 10.0.0.2:6666 && kvr setnodes --from 10.0.0.2:6666 --bump --all --verify
EOF2
}

samples=2 interval=2s timeout=3s stuck_after=10s
args=()
while [ $# -gt 0 ]; do
  case $1 in
    -h | --help) usage; exit 0 ;;
    --samples | --interval | --timeout | --stuck-after)
      [ $# -ge 2 ] || usage_error "$1 needs a value"
      case $1 in --samples) samples=$2 ;; --interval) interval=$2 ;; --timeout) timeout=$2 ;; --stuck-after) stuck_after=$2 ;; esac
      shift 2 ;;
    --) shift; args+=("$@"); break ;;
    -*) usage_error "unknown option $1" ;;
    *) args+=("$1"); shift ;;
  esac
done
[ ${#args[@]} -eq 1 ] || usage_error "give SEED (host:port of a live node)"
seed=${args[0]}
need_kvr

step "diagnose every node from $seed (kvr doctor, read-only): is a replica stuck in a full sync?"
doc=$RB_TMP/doctor.ndjson
drc=$(doctor_run "$doc" --seed "$seed" --samples "$samples" --interval "$interval" --timeout "$timeout" --stuck-after "$stuck_after")
[ "$drc" -eq 2 ] && { cat "$doc.log" >&2; usage_error; }
[ "$drc" -eq 4 ] && die 4 "$seed did not answer kvr doctor: nothing could be looked at; give a live node of the cluster"
say "$(events "$doc" node | wc -l | tr -d ' ') node(s) looked at"

bad=0
for addr in $(findings "$doc" stuck-full-sync); do
  bad=$((bad + 1))
  master=$(node_field "$doc" "$addr" master)
  mstatus=$(node_field "$doc" "$master" status)
  step "STUCK $addr (node id $(node_field "$doc" "$addr" id)): full sync from ${master:-its master} with no progress, last I/O $(node_field "$doc" "$addr" lastIoSeconds) s ago"
  say "its master ${master:-?}: ${mstatus:-not looked at}"
  say "safe order:"
  say "  1. push nothing to $addr now: no kvr setnodes, no SLAVEOF, no failover that includes it;"
  say "     on a build without the fetch read deadline the next SETNODES freezes it until its fetch socket errors (hours)"
  if [ "$mstatus" = ok ]; then
    say "  2. its master answers but sends nothing: fix the path between them (a stalled link, a firewall), or restart $addr"
  else
    say "  2. bring its master ${master:-?} back (kvr doctor --seed ${master:-<master>} --samples 1), or restart $addr: its full sync starts over"
  fi
  say "  3. run this again until it exits 0: runbooks/stuck-replica.sh $seed"
  say "  4. only then push topology: runbooks/topology-verify.sh $seed --fix, or kvr setnodes --from $seed --bump --all --verify"
done
for addr in $(findings "$doc" unresponsive); do
  bad=$((bad + 1))
  step "FROZEN $addr: connected, no reply within $timeout — a SETNODES or SLAVEOF blocked behind a hung fetch, on builds without the fetch read deadline"
  say "safe order: 1. push nothing to it (every command waits behind the blocked one);"
  say "            2. restart it (a blocked fetch ends only when its socket errors);"
  say "            3. run this again; 4. then runbooks/topology-verify.sh $seed --fix"
done
for addr in $(findings "$doc" unreachable); do
  say "could not reach $addr ($(node_field "$doc" "$addr" detail)): not looked at"
done

if [ "$bad" -gt 0 ]; then
  step "$bad node(s) stuck or frozen: push no topology to them until this exits 0"
  exit 1
fi
step "no node is stuck in a full sync: topology can be pushed"
exit 0
