#!/usr/bin/env bash
# topology-verify.sh — do all nodes hold the same topology version? With --fix, bring the nodes
# behind up to the highest version. Needs kvr only (jq if installed). See --help.
set -euo pipefail
RB_NAME=topology-verify.sh
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

usage() {
  cat <<'EOF'
Usage: topology-verify.sh [options] SEED [--fix]

Reads CLUSTERX VERSION from every node of the cluster SEED (host:port of any live node) belongs
to (kvr doctor, read-only) and reports version splits: nodes that missed a push (it timed out,
the node was down or left alone) serve an older topology and route clients to the wrong nodes.

With --fix, the topology of the highest version (read from a node that holds it, kvr setnodes
--from) is pushed, with that same version, to the nodes behind it, each under deadlines, and
read back. It refuses when the nodes at the highest version disagree on its content (push the
intended topology with kvr setnodes --bump instead), and it never pushes to a node stuck in a
full sync or one that does not answer (named, with what to do first).

Options:
  --fix            push the highest version's topology to the nodes behind it, then verify
  --samples N      doctor looks at each node N times (default 2: a stuck sync shows as growth)
  --interval D     time between the looks (default 2s)
  --timeout D      connect and reply deadline per node (default 3s)
  -h, --help       this text

Environment: KVR (the kvr executable, default kvr on PATH), KVR_AUTH (the nodes' password).

Exit codes:
  0  every node holds the same topology version (after --fix: healed and verified)
  1  a split remains: without --fix, any split; with --fix, nodes it could not or would not fix
  2  usage error, or kvr not found
  3  the nodes that answered agree, but some nodes did not answer (their version is unknown)
  4  SEED did not answer: nothing read, nothing pushed

Example:
  runbooks/topology-verify.sh 10.0.0.2:6666 || runbooks/topology-verify.sh 10.0.0.2:6666 --fix
EOF
}

fix=0 samples=2 interval=2s timeout=3s
args=()
while [ $# -gt 0 ]; do
  case $1 in
    -h | --help) usage; exit 0 ;;
    --fix) fix=1; shift ;;
    --samples | --interval | --timeout)
      [ $# -ge 2 ] || usage_error "$1 needs a value"
      case $1 in --samples) samples=$2 ;; --interval) interval=$2 ;; --timeout) timeout=$2 ;; esac
      shift 2 ;;
    --) shift; args+=("$@"); break ;;
    -*) usage_error "unknown option $1" ;;
    *) args+=("$1"); shift ;;
  esac
done
[ ${#args[@]} -eq 1 ] || usage_error "give SEED (host:port of a live node)"
seed=${args[0]}
need_kvr

# survey N: kvr doctor into doctor-N.ndjson; fills versions.txt ("<version> <address>" per node
# that answered) and silent.txt (addresses that did not); exits 4 / 2 as the doctor says.
survey() {
  local doc=$RB_TMP/doctor-$1.ndjson rc line addr v
  rc=$(doctor_run "$doc" --seed "$seed" --samples "$samples" --interval "$interval" --timeout "$timeout")
  [ "$rc" -eq 2 ] && { cat "$doc.log" >&2; usage_error; }
  [ "$rc" -eq 4 ] && die 4 "$seed did not answer kvr doctor: nothing read, nothing pushed; give a live node of the cluster"
  : >"$RB_TMP/versions.txt"
  : >"$RB_TMP/silent.txt"
  events "$doc" node | while IFS= read -r line; do
    addr=$(printf '%s\n' "$line" | json_get address)
    v=$(printf '%s\n' "$line" | json_get clusterVersion)
    if [ "$(printf '%s\n' "$line" | json_get status)" = ok ] && [ -n "$v" ]; then echo "$v $addr" >>"$RB_TMP/versions.txt"; else echo "$addr" >>"$RB_TMP/silent.txt"; fi
  done
  DOC=$doc
}

# report: print the versions and who holds them; sets HIGHEST and SPLIT (1 when versions differ).
report() {
  local v
  HIGHEST=$(sort -n "$RB_TMP/versions.txt" | tail -n 1 | cut -d' ' -f1)
  SPLIT=0
  [ "$(cut -d' ' -f1 "$RB_TMP/versions.txt" | sort -u | wc -l)" -gt 1 ] && SPLIT=1
  cut -d' ' -f1 "$RB_TMP/versions.txt" | sort -nu | while IFS= read -r v; do
    say "version $v: $(awk -v v="$v" '$1 == v { print $2 }' "$RB_TMP/versions.txt" | tr '\n' ' ')"
  done
  while IFS= read -r addr; do say "version unknown: $addr (did not answer)"; done <"$RB_TMP/silent.txt"
  # Same version, different contents: CLUSTER NODES compared by the doctor.
  CONTENT_SPLIT=$(events "$DOC" finding | grep -F '"code":"topology-split"' | grep -F 'disagree on the topology (CLUSTER NODES)' || true)
}

step "1. topology versions of every node reachable from $seed (kvr doctor, read-only)"
survey 1
report
if [ "$SPLIT" -eq 0 ] && [ -z "$CONTENT_SPLIT" ]; then
  if [ -s "$RB_TMP/silent.txt" ]; then
    step "the nodes that answered hold version $HIGHEST; some did not answer: check them, then run this again"
    exit 3
  fi
  step "every node holds topology version $HIGHEST"
  exit 0
fi
if [ "$SPLIT" -eq 0 ]; then
  step "every node answers version $HIGHEST, but they disagree on its content: --fix cannot choose"
  say "push the intended topology with a new version: kvr setnodes --nodes-file <topology> --bump --all --verify"
  exit 1
fi
if [ "$fix" -eq 0 ]; then
  step "split: nodes behind version $HIGHEST serve an older topology; run with --fix to push version $HIGHEST's topology to them"
  exit 1
fi

step "2. --fix: read version $HIGHEST's topology and check that every node holding it agrees"
holders=$(awk -v v="$HIGHEST" '$1 == v { print $2 }' "$RB_TMP/versions.txt")
ref=''
for addr in $holders; do
  rc=0
  "$KVR" setnodes --from "$addr" --timeout "$timeout" --dry-run >"$RB_TMP/t.txt" 2>"$RB_TMP/from.log" || rc=$?
  [ "$rc" -eq 0 ] || { cat "$RB_TMP/from.log" >&2; die 1 "could not read version $HIGHEST's topology from $addr: nothing pushed"; }
  if [ -z "$ref" ]; then
    ref=$addr
    mv "$RB_TMP/t.txt" "$RB_TMP/top.txt"
  elif ! cmp -s "$RB_TMP/t.txt" "$RB_TMP/top.txt"; then
    die 1 "$addr and $ref both hold version $HIGHEST with different contents: --fix cannot choose; push the intended topology with kvr setnodes --bump; nothing pushed"
  fi
done
say "version $HIGHEST's topology (from $ref):"
while IFS= read -r line; do say "  $line"; done <"$RB_TMP/top.txt"

step "3. the nodes behind it: push to those in it that are neither stuck in a full sync nor frozen"
mapfile -t stuck < <(findings "$DOC" stuck-full-sync)
targets=()
left=0
while read -r v addr; do
  [ "$v" = "$HIGHEST" ] && continue
  if ! awk '{ print $2 ":" $3 }' "$RB_TMP/top.txt" | grep -qxF "$addr"; then
    say "left alone: $addr (version $v) is not in version $HIGHEST's topology"
    left=1
  elif in_list "$addr" "${stuck[@]+"${stuck[@]}"}"; then
    say "left alone: $addr (version $v) is stuck in a full sync; see runbooks/stuck-replica.sh $seed"
    left=1
  else
    say "behind: $addr (version $v)"
    targets+=(--target "$addr")
  fi
done <"$RB_TMP/versions.txt"
if [ ${#targets[@]} -gt 0 ]; then
  prc=0
  "$KVR" setnodes --nodes-file "$RB_TMP/top.txt" --version "$HIGHEST" "${targets[@]}" --verify --timeout "$timeout" || prc=$?
  [ "$prc" -eq 0 ] || say "kvr setnodes exit $prc: see its table"
fi

step "4. verify: topology versions again"
survey 2
report
if [ "$SPLIT" -eq 0 ] && [ -z "$CONTENT_SPLIT" ] && [ "$left" -eq 0 ]; then
  if [ -s "$RB_TMP/silent.txt" ]; then
    step "healed where nodes answered; some did not answer"
    exit 3
  fi
  step "healed: every node holds topology version $HIGHEST"
  exit 0
fi
step "a split remains (nodes left alone or that did not take the push): see above"
exit 1
