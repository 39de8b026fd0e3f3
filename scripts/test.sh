#!/usr/bin/env bash
# Sets up and runs every test: installs what is missing, builds, and runs the unit and
# integration tests (the integration tests start and stop a real Postfix + Dovecot on loopback).
# The whole suite runs twice: optimised, then under AddressSanitizer and UndefinedBehaviorSanitizer.
# Then the tests labelled `threads` under ThreadSanitizer (tsan), every fuzzer for a bounded time
# (fuzz: FUZZ_SECONDS each, default 60, as many at once as there are cores), and once the
# container image and the sidecar with podman (tests/container/container_test.py). After the release preset: the mutation pass over the safety
# and secret promises and the Debian package, then a 5-minute soak with faults (soak:
# scripts/soak.sh) with clang-tidy on every file beside it (soak+tidy; tidy alone: tidy).
#
# Usage: bash scripts/test.sh [STEP...]   (a preset, or tidy, soak, soak+tidy, fuzz or container;
#                                          default: release soak+tidy sanitize tsan fuzz container)
set -euo pipefail
cd "$(dirname "$0")/.."

steps=("$@")
((${#steps[@]})) || steps=(release soak+tidy sanitize tsan fuzz container)

bash scripts/install-deps.sh

jobs=$(nproc)
# ccache lets the mutation pass below take the release objects for its scratch copy, with paths
# relative to the checkout (base_dir) in its keys: absolute ones would miss every object there.
if command -v ccache >/dev/null; then
  export CMAKE_CXX_COMPILER_LAUNCHER=${CMAKE_CXX_COMPILER_LAUNCHER:-ccache}
  export CMAKE_C_COMPILER_LAUNCHER=${CMAKE_C_COMPILER_LAUNCHER:-ccache}
  export CCACHE_BASEDIR=${CCACHE_BASEDIR:-$PWD} CCACHE_NOHASHDIR=1
fi
for step in "${steps[@]}"; do
  started=$SECONDS
  case $step in
    fuzz)
      echo "== fuzz: build and run every target"
      bash scripts/fuzz.sh --seconds="${FUZZ_SECONDS:-60}"
      ;;
    tidy)
      echo "== tidy: clang-tidy on every file"
      bash scripts/tidy.sh build/release
      ;;
    soak | soak+tidy)
      echo "== soak: faults against the real stack, Prometheus and Alertmanager (about 5 min)"
      cmake --preset release >/dev/null
      cmake --build --preset release -j "$jobs" --target mailcanary
      # The soak mostly waits on its schedule: clang-tidy (about 10 min on two cores) can use
      # the cores meanwhile, at the lowest priority so that the agent's timing is not its victim.
      if [[ $step == soak+tidy ]]; then
        nice -n 19 bash scripts/tidy.sh build/release >build/release/tidy-step.log 2>&1 &
        tidy_pid=$!
      fi
      soak_status=0
      bash scripts/soak.sh --duration="${SOAK_DURATION:-5m}" || soak_status=$?
      if [[ $step == soak+tidy ]]; then
        echo "== tidy: clang-tidy on every file (beside the soak)"
        tidy_status=0
        wait "$tidy_pid" || tidy_status=$?
        cat build/release/tidy-step.log
        ((tidy_status == 0)) || exit "$tidy_status"
      fi
      ((soak_status == 0)) || exit "$soak_status"
      ;;
    container)
      echo "== container: image and sidecar"
      python3 tests/container/container_test.py
      ;;
    *)
      echo "== $step: configure and build"
      cmake --preset "$step" >/dev/null
      cmake --build --preset "$step" -j "$jobs"
      echo "== $step: tests"
      # Serial on purpose: the scheduler tests measure real timer spacing, and parallel tests on
      # two cores would make them measure the machine instead.
      ctest --preset "$step"
      if [[ $step == release ]]; then
        # Mutation testing of the safety and secret promises (docs/testing.md, "Mutants"): each
        # mutation tagged ci, applied alone to a scratch copy, must make a named test fail. The
        # whole list is `bash scripts/mutants.sh`.
        echo "== mutants: the safety and secret mutations"
        bash scripts/mutants.sh --tag ci --fail-fast -j "$jobs"
        # The Debian package of the optimised build: lintian, an install into a fresh Debian 12
        # root, the systemd unit through systemd-analyze (packaging/test_package.sh).
        echo "== package: cpack, lintian, install into Debian 12, systemd-analyze"
        bash packaging/test_package.sh build/release
      fi
      ;;
  esac
  echo "== $step: $((SECONDS - started)) s"
done
