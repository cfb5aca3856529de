#!/usr/bin/env bash
# shellcheck shell=bash
# Shared by the runbooks (sourced, never run): finding kvr, reading the --json lines kvr prints,
# temporary files, and the way each step says what it checks and why. Needs bash, coreutils,
# grep, sed and awk; uses jq when it is installed, and does the same without it.

# The kvr executable: KVR=/path/to/kvr, else kvr on PATH.
KVR=${KVR:-kvr}

# A step: what is checked or done, and why (stdout).
step() { printf '\n== %s\n' "$*"; }
# An indented detail line (stdout).
say() { printf '   %s\n' "$*"; }
# An error line on stderr.
err() { printf '%s: %s\n' "$RB_NAME" "$*" >&2; }
# Print an error and exit with a code.
die() {
  local code=$1
  shift
  err "$*"
  exit "$code"
}

# A usage error: the message, the script's usage (its own usage function) on stderr, exit 2.
usage_error() {
  [ $# -gt 0 ] && err "$*"
  usage >&2
  exit 2
}

# Exit 2 unless kvr can be run.
need_kvr() {
  command -v "$KVR" >/dev/null 2>&1 || die 2 "cannot find kvr: put it on PATH or set KVR=/path/to/kvr"
}

# A private temporary directory, removed when the script exits.
RB_TMP=$(mktemp -d "${TMPDIR:-/tmp}/kvr-runbook.XXXXXX")
trap 'rm -rf "$RB_TMP"' EXIT

# json_get KEY: the top-level field KEY of the JSON object on stdin (one kvr --json line) as
# text: a string without its quotes, a number, true or false; nothing for null or a missing key.
# For scalar fields only (kvr prints each event on one line, without spaces between tokens).
json_get() {
  local line
  IFS= read -r line || true
  if command -v jq >/dev/null 2>&1; then
    printf '%s\n' "$line" | jq -r --arg k "$1" 'if has($k) and .[$k] != null then .[$k] | tostring else empty end'
  else
    # "KEY": then a string (escapes kept whole) or a bare token; the first match is the top-level one.
    printf '%s\n' "$line" | grep -oE "\"$1\""':("([^"\\]|\\.)*"|[^,}]*)' | head -n 1 |
      sed -e "s/^\"$1\"://" -e 's/^null$//' -e 's/^"\(.*\)"$/\1/' -e 's/\\"/"/g' -e 's/\\\\/\\/g'
  fi
}

# events FILE TYPE: the lines of the NDJSON file FILE whose "event" is TYPE.
events() {
  grep -F "\"event\":\"$2\"" "$1" || true
}

# doctor_run OUT [kvr doctor options...]: run kvr doctor --json into OUT; prints its exit code
# (kvr doctor: 0 clean, 1 a warn or crit finding, 3 a node unreachable or unresponsive, 4 no
# seed answered, 2 usage). Its log lines go to OUT.log.
doctor_run() {
  local out=$1 rc=0
  shift
  "$KVR" doctor "$@" --json >"$out" 2>"$out.log" || rc=$?
  echo "$rc"
}

# node_field DOCTOR ADDRESS KEY: KEY of the doctor's `node` event for ADDRESS (nothing when absent).
node_field() {
  local line
  line=$(grep -F "\"address\":\"$2\"" "$1" | grep -F '"event":"node"' | head -n 1 || true)
  [ -n "$line" ] || return 0
  printf '%s\n' "$line" | json_get "$3"
}

# findings DOCTOR CODE: the addresses (`node` field) of the doctor's findings of CODE, one a line.
findings() {
  local line
  events "$1" finding | grep -F "\"code\":\"$2\"" | while IFS= read -r line; do
    printf '%s\n' "$line" | json_get node
  done
}

# print_findings DOCTOR: every warn or crit finding, one line each: severity, code, node, message.
print_findings() {
  local line sev code node msg
  events "$1" finding | while IFS= read -r line; do
    sev=$(printf '%s\n' "$line" | json_get severity)
    [ "$sev" = info ] && continue
    code=$(printf '%s\n' "$line" | json_get code)
    node=$(printf '%s\n' "$line" | json_get node)
    msg=$(printf '%s\n' "$line" | json_get message)
    say "$sev $code ${node:-cluster}: $msg"
  done
}

# in_list ITEM LIST...: true when ITEM is one of LIST.
in_list() {
  local x=$1
  shift
  local y
  for y in "$@"; do [ "$x" = "$y" ] && return 0; done
  return 1
}
