#!/usr/bin/env bash
# The side-by-side benchmark: mailcanary against Debian's prometheus-blackbox-exporter (and the
# monitoring-plugins check_smtp), on one machine, against one SMTP sink. See docs/benchmarks.md.
#
#   bash bench/run.sh                      # everything (about 30 minutes on 2 cores)
#   bash bench/run.sh --only cpu --reps 1  # a part; any other flag goes to bench/bench.py
#
# Installs what it needs (as root, without starting any system service), builds the release
# tree in build/bench, and runs bench/bench.py at a slightly raised priority so that unrelated
# work on the machine disturbs every tool alike and less. Results: build/bench/results.json and
# the tables on standard output. Not part of CI: nothing here is a test.
set -euo pipefail
cd "$(dirname "$0")/.."

BUILD=${MAILCANARY_BENCH_BUILD:-build/bench}
PACKAGES=(prometheus-blackbox-exporter monitoring-plugins-basic valgrind python3 curl)

log() { printf 'bench: %s\n' "$*" >&2; }

as_root() {
  if [[ $(id -u) -eq 0 ]]; then "$@"; else sudo "$@"; fi
}

install_missing() {
  local missing=() pkg status
  for pkg in "${PACKAGES[@]}"; do
    status=$(dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null || true)
    [[ $status == "install ok installed" ]] || missing+=("$pkg")
  done
  [[ ${#missing[@]} -eq 0 ]] && return 0
  log "installing ${missing[*]}"
  # policy-rc.d exiting 101: the package's own blackbox_exporter service is not started (it
  # would sit on :9115). An existing policy-rc.d (a container's) is left as it is.
  local policy=/usr/sbin/policy-rc.d created=0
  if [[ ! -e $policy ]]; then
    printf '#!/bin/sh\nexit 101\n' | as_root tee "$policy" >/dev/null
    as_root chmod 0755 "$policy"
    created=1
  fi
  as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
    "${missing[@]}" </dev/null >/dev/null
  [[ $created -eq 1 ]] && as_root rm -f "$policy"
  return 0
}

bash scripts/install-deps.sh >/dev/null
install_missing

log "building (RelWithDebInfo) in $BUILD"
cmake -S . -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DMAILCANARY_WERROR=ON \
  -DMAILCANARY_BUILD_TESTS=OFF >/dev/null
cmake --build "$BUILD" -j"$(nproc)" --target mailcanary mailcanary-sink mailcanary-http-load >/dev/null

log "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)," \
  "kernel $(uname -r), load $(cut -d' ' -f1-3 /proc/loadavg)"
log "mailcanary $(git rev-parse --short HEAD), $(prometheus-blackbox-exporter --version 2>&1 | head -1)"

NICE=()
[[ $(id -u) -eq 0 ]] && NICE=(nice -n -5)
exec "${NICE[@]}" python3 bench/bench.py --tools "$BUILD/bench" \
  --mailcanary "$BUILD/agent/mailcanary" --work "$BUILD/work" --out "$BUILD/results.json" "$@"
