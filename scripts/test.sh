#!/usr/bin/env bash
# Sets up and runs every test: installs what is missing, builds, and runs the unit and
# integration tests (the integration tests start and stop a real Postfix + Dovecot on loopback).
# The whole suite runs twice: optimised, then under AddressSanitizer and UndefinedBehaviorSanitizer.
#
# Usage: bash scripts/test.sh [PRESET...]   (default: release sanitize)
set -euo pipefail
cd "$(dirname "$0")/.."

presets=("$@")
((${#presets[@]})) || presets=(release sanitize)

bash scripts/install-deps.sh

# The Debian package of the optimised build: lintian, an install into a fresh Debian 12 root, the
# systemd unit through systemd-analyze (packaging/test_package.sh, docs/deploy.md).
package_stage() {
  echo "== package: cpack, lintian, install into Debian 12, systemd-analyze"
  bash packaging/test_package.sh build/release
}

jobs=$(nproc)
for preset in "${presets[@]}"; do
  echo "== $preset: configure and build"
  cmake --preset "$preset" >/dev/null
  cmake --build --preset "$preset" -j "$jobs"
  echo "== $preset: tests"
  # Serial on purpose: the scheduler tests measure real timer spacing, and parallel tests on two
  # cores would make them measure the machine instead.
  ctest --preset "$preset"
done

if [[ " ${presets[*]} " == *" release "* ]]; then
  package_stage
fi
