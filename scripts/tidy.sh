#!/usr/bin/env bash
# clang-tidy with the repository's .clang-tidy on every source file of a build tree's
# compile_commands.json (our folders only), in parallel. Fails on any finding.
#
# Usage: bash scripts/tidy.sh [BUILD_DIR]   (default build/release; build it first)
set -euo pipefail
cd "$(dirname "$0")/.."

build=${1:-build/release}
[[ -f $build/compile_commands.json ]] || { echo "tidy: no $build/compile_commands.json" >&2; exit 1; }
log=$build/clang-tidy.log
# clang 14 with libstdc++ 12 does not make Boost 1.74 see its coroutine support: these turn
# Asio's co_await on, so that clang-tidy parses the coroutines instead of stopping at them.
status=0
run-clang-tidy-14 -j "$(nproc)" -quiet -p "$build" \
  -extra-arg=-DBOOST_ASIO_HAS_CO_AWAIT -extra-arg=-DBOOST_ASIO_HAS_STD_COROUTINE \
  "$PWD/(agent|bench|common|probes|protocols|tests)/" >"$log" 2>&1 || status=$?
findings=$(grep -E '(warning|error): ' "$log" | sort -u || true)
files=$(grep -c '^clang-tidy-14 ' "$log" || true)
if [[ -n $findings || $status -ne 0 ]]; then
  printf '%s\n' "$findings"
  echo "tidy: $(printf '%s\n' "$findings" | grep -c . || true) finding(s) in $files files (exit $status; log: $log)" >&2
  exit 1
fi
echo "tidy: $files files clean"
