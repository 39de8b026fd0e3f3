#!/usr/bin/env bash
# Sets up and runs every test: installs what is missing, builds, and runs the unit and
# integration tests (the integration tests start and stop a real Postfix + Dovecot on loopback).
# The whole suite runs twice: optimised, then under AddressSanitizer and UndefinedBehaviorSanitizer.
#
# Then, once, the container image and the sidecar with podman (tests/container/container_test.py).
#
# Usage: bash scripts/test.sh [STAGE...]   (a preset or `container`; default: release sanitize container)
set -euo pipefail
cd "$(dirname "$0")/.."

presets=("$@")
((${#presets[@]})) || presets=(release sanitize container)

bash scripts/install-deps.sh

jobs=$(nproc)
for preset in "${presets[@]}"; do
  if [[ $preset == container ]]; then
    echo "== container: image and sidecar"
    python3 tests/container/container_test.py
    continue
  fi
  echo "== $preset: configure and build"
  cmake --preset "$preset" >/dev/null
  cmake --build --preset "$preset" -j "$jobs"
  echo "== $preset: tests"
  # Serial on purpose: the scheduler tests measure real timer spacing, and parallel tests on two
  # cores would make them measure the machine instead.
  ctest --preset "$preset"
done
