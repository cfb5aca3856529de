#!/usr/bin/env bash
# failover.sh — a master is dead: promote its best replica and push the new topology to every
# node under deadlines, without touching a node stuck in a full sync. Needs kvr only (jq if
# installed). See --help.
set -euo pipefail
RB_NAME=failover.sh
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

usage() {
  cat <<'EOF'
Usage: failover.sh [options] SEED DEAD_MASTER_ID

A master of a Kvrocks cluster died. From SEED (host:port of any live node):
  1. read the topology (kvr setnodes --from SEED) and find DEAD_MASTER_ID's replicas;
  2. diagnose (kvr doctor): the dead master must not answer; nodes stuck in a full sync are
     named and left alone (a topology push freezes them on builds without the fetch read
     deadline), and so are nodes that do not answer;
  3. promote the replica of the dead master with the highest offset, dropping the dead master
     from the topology (it cannot be pushed to, and a dead replica would keep the doctor red);
  4. push the new topology with a bumped version to every other node, verify it;
  5. diagnose again.

Options:
  --samples N      doctor looks at each node N times (default 2: a stuck sync shows as growth)
  --interval D     time between the looks (default 2s)
  --timeout D      connect and reply deadline per node (default 3s)
  --dry-run        stop after printing the new topology: nothing is pushed
  -h, --help       this text

Environment: KVR (the kvr executable, default kvr on PATH), KVR_AUTH (the nodes' password).

Exit codes:
  0  done: every pushed node took the new version, and the doctor finds nothing above info
     except the expected no-replica warning for the promoted master (give it a replica next)
  1  pushed, but the cluster is not healthy yet: nodes left alone (stuck, frozen, unreachable),
     a node that did not take the new version, or other doctor findings (printed)
  2  usage error, or kvr not found
  3  refused, nothing pushed: DEAD_MASTER_ID is not in the topology or not a master, it still
     answers, or none of its replicas can be promoted
  4  SEED did not answer: nothing read, nothing pushed

Example:
  runbooks/failover.sh 10.0.0.2:6666 7f3c...e1   # after 10.0.0.1:6666 (id 7f3c...e1) died
EOF
}

samples=2 interval=2s timeout=3s dry_run=0
args=()
while [ $# -gt 0 ]; do
  case $1 in
    -h | --help) usage; exit 0 ;;
    --samples | --interval | --timeout)
      [ $# -ge 2 ] || usage_error "$1 needs a value"
      case $1 in --samples) samples=$2 ;; --interval) interval=$2 ;; --timeout) timeout=$2 ;; esac
      shift 2 ;;
    --dry-run) dry_run=1; shift ;;
    --) shift; args+=("$@"); break ;;
    -*) usage_error "unknown option $1" ;;
    *) args+=("$1"); shift ;;
  esac
done
[ ${#args[@]} -eq 2 ] || usage_error "give SEED and DEAD_MASTER_ID"
seed=${args[0]} dead=${args[1]}
need_kvr

step "1. topology of $seed: which nodes replicate the dead master $dead"
rc=0
"$KVR" setnodes --from "$seed" --timeout "$timeout" --dry-run >"$RB_TMP/before.txt" 2>"$RB_TMP/from.log" || rc=$?
if [ "$rc" -ne 0 ]; then
  grep -v ' info ' "$RB_TMP/from.log" >&2 || true
  [ "$rc" -eq 2 ] && usage_error
  die 4 "could not read the topology from $seed: nothing was pushed; give a live node of the cluster as SEED"
fi
dead_line=$(awk -v id="$dead" '$1 == id' "$RB_TMP/before.txt")
[ -n "$dead_line" ] || die 3 "no node $dead in the topology of $seed: nothing pushed (kvr setnodes --from $seed --dry-run lists the nodes)"
read -r _ dead_host dead_port dead_role _ dead_slots <<<"$dead_line"
dead_addr="$dead_host:$dead_port"
[ "$dead_role" = master ] || die 3 "$dead ($dead_addr) is a $dead_role, not a master: nothing to fail over"
say "dead master: $dead_addr, slots ${dead_slots:-none}"
replicas=$(awk -v id="$dead" '$4 == "slave" && $5 == id { print $1 " " $2 ":" $3 }' "$RB_TMP/before.txt")
[ -n "$replicas" ] || die 3 "$dead ($dead_addr) has no replica in the topology: promotion cannot save its slots; nothing pushed"
while read -r id addr; do say "replica: $addr ($id)"; done <<<"$replicas"

step "2. diagnose (kvr doctor): the dead master must be down; nodes stuck in a full sync must not get a topology push"
drc=$(doctor_run "$RB_TMP/doctor1.ndjson" --seed "$seed" --samples "$samples" --interval "$interval" --timeout "$timeout")
[ "$drc" -eq 4 ] && die 4 "$seed did not answer kvr doctor: nothing pushed"
[ "$drc" -eq 2 ] && { cat "$RB_TMP/doctor1.ndjson.log" >&2; exit 2; }
dead_status=$(node_field "$RB_TMP/doctor1.ndjson" "$dead_addr" status)
case $dead_status in
  unreachable | unresponsive) say "$dead_addr is $dead_status: it is down" ;;
  *) die 3 "$dead_addr answers (doctor status: ${dead_status:-not seen}): a master that answers is not failed over (its clients would write to both); stop it first; nothing pushed" ;;
esac
leave=()
for addr in $(findings "$RB_TMP/doctor1.ndjson" stuck-full-sync); do
  leave+=("$addr")
  say "STUCK $addr: in a full sync with no progress; it gets no push now (on a build without the fetch read deadline a SETNODES freezes it)"
  say "   first: bring its master back or restart it, then runbooks/stuck-replica.sh $seed; then runbooks/topology-verify.sh $seed --fix"
done
for addr in $(findings "$RB_TMP/doctor1.ndjson" unresponsive) $(findings "$RB_TMP/doctor1.ndjson" unreachable); do
  [ "$addr" = "$dead_addr" ] && continue
  in_list "$addr" "${leave[@]+"${leave[@]}"}" && continue
  leave+=("$addr")
  say "DOWN $addr: $(node_field "$RB_TMP/doctor1.ndjson" "$addr" status); it gets no push now (restart it, then runbooks/topology-verify.sh $seed --fix)"
done

step "3. choose the replica to promote: the one with the highest replication offset (the least data lost)"
best='' best_addr='' best_offset=-1
while read -r id addr; do
  status=$(node_field "$RB_TMP/doctor1.ndjson" "$addr" status)
  offset=$(node_field "$RB_TMP/doctor1.ndjson" "$addr" offset)
  if in_list "$addr" "${leave[@]+"${leave[@]}"}" || [ "$status" != ok ]; then
    say "$addr: not a candidate (${status:-not seen}$(in_list "$addr" "${leave[@]+"${leave[@]}"}" && echo ", left alone"))"
    continue
  fi
  say "$addr: offset ${offset:-unknown}"
  if [ -n "$offset" ] && [ "$offset" -gt "$best_offset" ]; then best=$id best_addr=$addr best_offset=$offset; fi
done <<<"$replicas"
[ -n "$best" ] || die 3 "no replica of $dead can be promoted (each is down, stuck or without an offset): nothing pushed"
say "promote $best_addr ($best), offset $best_offset"

step "4. the new topology: $best_addr takes slots ${dead_slots:-none}; $dead_addr is dropped"
rc=0
"$KVR" setnodes --nodes-file "$RB_TMP/before.txt" --promote "$best" --drop-old --dry-run >"$RB_TMP/after.txt" 2>"$RB_TMP/edit.log" || rc=$?
[ "$rc" -eq 0 ] || { cat "$RB_TMP/edit.log" >&2; die 3 "kvr setnodes refused the edit: nothing pushed"; }
while IFS= read -r line; do say "$line"; done <"$RB_TMP/after.txt"
targets=()
while read -r _ host port _; do
  addr="$host:$port"
  in_list "$addr" "${leave[@]+"${leave[@]}"}" || targets+=(--target "$addr")
done <"$RB_TMP/after.txt"
[ ${#targets[@]} -gt 0 ] || die 3 "every node of the new topology is left alone: nothing pushed"
if [ "$dry_run" -eq 1 ]; then
  say "dry run: would push it with a bumped version to $((${#targets[@]} / 2)) node(s); nothing pushed"
  exit 0
fi

step "5. push it with version max + 1 to every node but those left alone, each under deadlines, and read the version back"
prc=0
"$KVR" setnodes --nodes-file "$RB_TMP/after.txt" --bump "${targets[@]}" --verify --timeout "$timeout" || prc=$?

step "6. diagnose again: is the cluster healthy?"
drc=$(doctor_run "$RB_TMP/doctor2.ndjson" --seed "$best_addr" --samples "$samples" --interval "$interval" --timeout "$timeout")
others=$(events "$RB_TMP/doctor2.ndjson" finding | while IFS= read -r line; do
  sev=$(printf '%s\n' "$line" | json_get severity)
  code=$(printf '%s\n' "$line" | json_get code)
  node=$(printf '%s\n' "$line" | json_get node)
  [ "$sev" = info ] && continue
  [ "$code" = no-replica ] && [ "$node" = "$best_addr" ] && continue
  echo "$code $node"
done)
healthy=0
if [ "$drc" -eq 0 ] || { [ "$drc" -eq 1 ] && [ -z "$others" ]; }; then healthy=1; fi
print_findings "$RB_TMP/doctor2.ndjson"
if [ "$healthy" -eq 1 ] && [ "$prc" -eq 0 ] && [ ${#leave[@]} -eq 0 ]; then
  step "done: $best_addr serves slots ${dead_slots:-none}; every node took the new version; the doctor finds nothing else"
  say "next: give $best_addr a replica (it has none now), and replace $dead_addr"
  exit 0
fi
step "not healthy yet"
[ "$prc" -eq 0 ] || say "some nodes did not take the new version (kvr setnodes exit $prc): see its table above"
for addr in "${leave[@]+"${leave[@]}"}"; do say "left alone: $addr (see step 2 for what to do first)"; done
[ "$healthy" -eq 1 ] || say "the doctor still reports the findings above (kvr doctor exit $drc)"
exit 1
