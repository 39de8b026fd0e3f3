#!/usr/bin/env bash
# Sets up and runs every test: installs what is missing, builds, and runs the unit and
# integration tests (the integration tests start and stop a real Postfix + Dovecot on loopback).
# The whole suite runs twice: optimised, then under AddressSanitizer and UndefinedBehaviorSanitizer.
# Then the tests labelled `threads` under ThreadSanitizer (tsan), every fuzzer for a bounded time
# (fuzz: FUZZ_SECONDS each, default 10), and once the container image and the sidecar with podman
# (tests/container/container_test.py). After the release preset: the mutation pass over the safety
# and secret promises and the Debian package, then clang-tidy on every file (tidy) and a 5-minute
# soak with faults (soak: scripts/soak.sh).
#
# Usage: bash scripts/test.sh [STEP...]   (a preset, or tidy, soak, fuzz or container; default:
#                                          release tidy soak sanitize tsan fuzz container)
set -euo pipefail
cd "$(dirname "$0")/.."

steps=("$@")
((${#steps[@]})) || steps=(release tidy soak sanitize tsan fuzz container)

bash scripts/install-deps.sh

jobs=$(nproc)
# ccache lets the mutation pass below take the release objects for its scratch copy.
if command -v ccache >/dev/null; then
  export CMAKE_CXX_COMPILER_LAUNCHER=${CMAKE_CXX_COMPILER_LAUNCHER:-ccache}
  export CMAKE_C_COMPILER_LAUNCHER=${CMAKE_C_COMPILER_LAUNCHER:-ccache}
fi
for step in "${steps[@]}"; do
  started=$SECONDS
  case $step in
    fuzz)
      echo "== fuzz: build and run every target"
      bash scripts/fuzz.sh --seconds="${FUZZ_SECONDS:-10}"
      ;;
    tidy)
      echo "== tidy: clang-tidy on every file"
      bash scripts/tidy.sh build/release
      ;;
    soak)
      echo "== soak: faults against the real stack, Prometheus and Alertmanager (about 5 min)"
      cmake --preset release >/dev/null
      cmake --build --preset release -j "$jobs" --target mailcanary
      bash scripts/soak.sh --duration="${SOAK_DURATION:-5m}"
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
        bash scripts/mutants.sh --tag ci -j "$jobs"
        # The Debian package of the optimised build: lintian, an install into a fresh Debian 12
        # root, the systemd unit through systemd-analyze (packaging/test_package.sh).
        echo "== package: cpack, lintian, install into Debian 12, systemd-analyze"
        bash packaging/test_package.sh build/release
      fi
      ;;
  esac
  echo "== $step: $((SECONDS - started)) s"
done
