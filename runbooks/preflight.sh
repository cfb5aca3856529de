#!/usr/bin/env bash
# preflight.sh — before rolling a Kvrocks build out: drill a staging node running it. Needs kvr
# only. See --help.
set -euo pipefail
RB_NAME=preflight.sh
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

usage() {
  cat <<'EOF2'
Usage: preflight.sh NODE [-- kvr drill options...]

Before a Kvrocks build goes to production, drill a staging node running it (NODE, host:port,
cluster mode): kvr drill --replica NODE makes it full-sync from a master the drill starts, cuts
that master mid-transfer without FIN or RST, then moves the node to another master with CLUSTERX
SETNODES. A build with the fetch read deadline (Kvrocks PR #2662) answers within the budget and
keeps answering PING; one without it freezes until its fetch socket errors — the production
incident. The node's data is replaced (drill a replica or a staging node: a master that owns
slots or has replicas is refused). Its topology is put back at the end (as a new version: run
runbooks/topology-verify.sh NODE --fix afterwards if the node is in a cluster).

Everything after -- goes to kvr drill (for instance --advertise-host, --budget, --give-up,
--files, --file-size; see kvr drill --help).

Environment: KVR (the kvr executable, default kvr on PATH), KVR_AUTH (the node's password),
KVR_MASTERS_AUTH (the password the drill's masters require, default KVR_AUTH).

Exit codes:
  0  PASS: the build stops a hung fetch in time; it may roll out
  1  FAIL: this build lacks the fetch read deadline (or does not stop its fetch in time): do not
     roll it out
  2  usage error, or kvr not found
  4  the drill could not run (the node unreachable, not in cluster mode, a password missing,
     no connection from the node to the drill's master, or a master that owns slots or has
     replicas: the drill replaces the node's data): nothing was judged

Example:
  KVR_AUTH=secret runbooks/preflight.sh 10.0.0.5:6666 -- --advertise-host 10.0.0.1
EOF2
}

args=() drill=()
while [ $# -gt 0 ]; do
  case $1 in
    -h | --help) usage; exit 0 ;;
    --) shift; drill=("$@"); break ;;
    -*) usage_error "unknown option $1 (kvr drill options go after --)" ;;
    *) args+=("$1"); shift ;;
  esac
done
[ ${#args[@]} -eq 1 ] || usage_error "give NODE (host:port of the staging node)"
node=${args[0]}
need_kvr

step "drill $node: a full sync whose master vanishes mid-transfer, then CLUSTERX SETNODES to another master (kvr drill --replica)"
say "why: on a build without the fetch read deadline that SETNODES never returns and the node stops answering"
rc=0
"$KVR" drill --replica "$node" "${drill[@]+"${drill[@]}"}" || rc=$?
case $rc in
  0)
    step "verdict: PASS — $node stopped its hung fetch in time: this build has the fetch read deadline"
    say "the node's topology was put back as a new version: if it is in a cluster, runbooks/topology-verify.sh $node --fix"
    exit 0 ;;
  1)
    step "verdict: FAIL — this build lacks the fetch read deadline (Kvrocks PR #2662), or does not stop a hung fetch in time: do not roll it out"
    say "the drill's reasons are on its last line above"
    exit 1 ;;
  2) usage_error ;;
  *)
    step "the drill could not run (kvr drill exit $rc): nothing was judged; see its error above"
    exit 4 ;;
esac
