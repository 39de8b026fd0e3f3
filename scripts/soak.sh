#!/usr/bin/env bash
# Soak with faults (docs/testing.md, "Soak with faults"): the release build's agent probes a
# fresh test mail stack for about DURATION, watched by Debian's Prometheus and Alertmanager with
# the shipped configuration and rules (time compressed), while tests/soak/soak.py switches faults
# on and off in the stack with healthy windows between them. Prints one table; exits 1 when a
# check failed. As root (the mail stack's daemons), on loopback only.
#
# Usage: bash scripts/soak.sh --duration=D [--agent=PATH] [--keep]
#   D: 120s, 5m, 6h. Every fault is injected at least once; a longer D repeats them (a round of
#   six every 10 minutes) with longer healthy windows.
#   MAILSTACK_PORT_BASE: the stack's ports (default 24000; the ctest fixture uses 22000).
set -euo pipefail
cd "$(dirname "$0")/.."

usage() { sed -n 's/^# \{0,1\}//; 8,11p' "$0" >&2; exit 2; }

duration="" agent=build/release/agent/mailcanary keep=()
for arg in "$@"; do
  case $arg in
    --duration=*) duration=${arg#*=} ;;
    --agent=*)    agent=${arg#*=} ;;
    --keep)       keep=(--keep) ;;
    *)            usage ;;
  esac
done
[[ -n $duration ]] || usage
[[ -x $agent ]] || { echo "soak: no agent at $agent: build the release preset first" >&2; exit 1; }
prometheus=$(command -v prometheus || true)
alertmanager=$(command -v prometheus-alertmanager || command -v alertmanager || true)
[[ -n $prometheus && -n $alertmanager ]] ||
  { echo "soak: prometheus or alertmanager missing: run scripts/install-deps.sh" >&2; exit 1; }

export MAILSTACK_PORT_BASE=${MAILSTACK_PORT_BASE:-24000}
stack_dir=$(mktemp -d /tmp/mailcanary-soak-stack.XXXXXX)
cleanup() {
  tests/stack/mailstack.sh stop "$stack_dir" >/dev/null 2>&1 || true
  rm -rf "$stack_dir"
}
trap cleanup EXIT
tests/stack/mailstack.sh start "$stack_dir"
python3 tests/soak/soak.py --duration="$duration" --agent="$agent" --prometheus="$prometheus" \
  --alertmanager="$alertmanager" --stack-dir="$stack_dir" "${keep[@]}"
