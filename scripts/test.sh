#!/usr/bin/env bash
# Sets up and runs every test: installs what is missing, builds, and runs the unit and
# integration tests (the integration tests start and stop a real Postfix + Dovecot on loopback).
# The whole suite runs twice: optimised, then under AddressSanitizer and UndefinedBehaviorSanitizer.
# Then the tests labelled `threads` under ThreadSanitizer (tsan) and every fuzzer for a bounded
# time (fuzz: FUZZ_SECONDS each, default 10). Also available: clang-tidy on every file (tidy,
# after release), not yet default: it has not had a complete clean run (issue 14).
#
# Usage: bash scripts/test.sh [STEP...]   (a preset, or fuzz or tidy; default: release sanitize
#                                          tsan fuzz; everything: add tidy)
set -euo pipefail
cd "$(dirname "$0")/.."

steps=("$@")
((${#steps[@]})) || steps=(release sanitize tsan fuzz)

bash scripts/install-deps.sh

jobs=$(nproc)
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
    *)
      echo "== $step: configure and build"
      cmake --preset "$step" >/dev/null
      cmake --build --preset "$step" -j "$jobs"
      echo "== $step: tests"
      # Serial on purpose: the scheduler tests measure real timer spacing, and parallel tests on
      # two cores would make them measure the machine instead.
      ctest --preset "$step"
      ;;
  esac
  echo "== $step: $((SECONDS - started)) s"
done
