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

# The Debian package of the optimised build: lintian, an install into a fresh Debian 12 root, the
# systemd unit through systemd-analyze (packaging/test_package.sh, docs/deploy.md).
package_stage() {
  echo "== package: cpack, lintian, install into Debian 12, systemd-analyze"
  bash packaging/test_package.sh build/release
}

jobs=$(nproc)
# ccache lets the mutation pass below take the release objects for its scratch copy.
if command -v ccache >/dev/null; then
  export CMAKE_CXX_COMPILER_LAUNCHER=${CMAKE_CXX_COMPILER_LAUNCHER:-ccache}
  export CMAKE_C_COMPILER_LAUNCHER=${CMAKE_C_COMPILER_LAUNCHER:-ccache}
fi
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

# Mutation testing of the safety and secret promises (docs/testing.md, "Mutants"): each mutation
# tagged ci, applied alone to a scratch copy, must make a named test fail. The whole list is
# `bash scripts/mutants.sh`.
if [[ " ${presets[*]} " == *" release "* ]]; then
  echo "== mutants: the safety and secret mutations"
  bash scripts/mutants.sh --tag ci -j "$jobs"
  package_stage
fi
