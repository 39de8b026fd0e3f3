#!/usr/bin/env bash
# Builds the libFuzzer targets (preset `fuzz`: clang-14, ASan+UBSan) and runs each for a bounded
# time, as many at once as there are cores, from its seeds (tests/fuzz/<target>/) and the corpus
# grown by earlier runs (build/fuzz/corpus/<target>/). Prints executions per target; fails on any crash, leak, hang
# (-timeout) or out-of-memory (-rss_limit_mb), whose input is left in build/fuzz/artifacts/.
# A fixed finding's input belongs in tests/fuzz/regressions/<target>/: the unit suite replays it.
#
# Usage: bash scripts/fuzz.sh [--seconds=N] [TARGET...]   (default: 60 s each, every target)
set -euo pipefail
cd "$(dirname "$0")/.."

seconds=60
targets=()
for arg in "$@"; do
  case $arg in
    --seconds=*) seconds=${arg#--seconds=} ;;
    -*) echo "usage: $0 [--seconds=N] [TARGET...]" >&2; exit 2 ;;
    *) targets+=("$arg") ;;
  esac
done
((${#targets[@]})) || targets=(smtp_reply smtp_dialog imap_response imap_dialog auth_results
                               mail_headers config http_request)

dictionary_for() {
  case $1 in
    smtp_*) echo smtp ;;
    imap_*) echo imap ;;
    auth_results | mail_headers) echo headers ;;
    config) echo toml ;;
    http_request) echo http ;;
  esac
}

cmake --preset fuzz >/dev/null
cmake --build --preset fuzz -j "$(nproc)" --target "${targets[@]/#/fuzz_}"

build=build/fuzz
mkdir -p "$build/artifacts"

# One target's bounded run; its summary line goes to $build/<target>.result.
fuzz_one() {
  local target=$1 corpus=$build/corpus/$1 log=$build/$1.log status=0
  mkdir -p "$corpus"
  "$build/tests/fuzz/fuzz_$target" "$corpus" "tests/fuzz/$target" \
    -dict="tests/fuzz/dicts/$(dictionary_for "$target").dict" \
    -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
    -artifact_prefix="$build/artifacts/$target-" >"$log" 2>&1 || status=$?
  local executions result=ok
  executions=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
  if ((status != 0)); then
    result="FAILED (exit $status): $(grep -m 1 -E 'ERROR|fuzz property|Test unit written' "$log" || true)"
  fi
  printf '%-14s %8s %12s %8s  %s\n' "$target" "$seconds" "${executions:-?}" \
    "$(find "$corpus" -type f | wc -l)" "$result" | tee "$build/$target.result"
}

# As many targets at once as there are cores: each is one process on one core.
parallel=$(nproc)
for target in "${targets[@]}"; do
  while (($(jobs -rp | wc -l) >= parallel)); do wait -n || true; done
  fuzz_one "$target" &
done
wait

failed=()
printf '%-14s %8s %12s %8s  %s\n' target seconds executions corpus result >"$build/summary.txt"
for target in "${targets[@]}"; do
  cat "$build/$target.result" >>"$build/summary.txt"
  grep -q '  ok$' "$build/$target.result" || failed+=("$target")
done
cat "$build/summary.txt"
echo "fuzz: summary in $build/summary.txt; logs in $build/<target>.log"
if ((${#failed[@]})); then
  echo "fuzz: failed: ${failed[*]} (inputs in $build/artifacts/)" >&2
  exit 1
fi
