#!/usr/bin/env bash
# Mutation testing of the lines that carry a promise: applies each mutation of
# tests/mutants/mutations.txt alone to a scratch copy (build/mutants/src), builds it incrementally
# and runs the tests it names; prints a table and fails when a mutation escapes or is stale.
#
# Usage: bash scripts/mutants.sh [--tag ci] [--fail-fast] [--markdown FILE] [-j N] [ID-PREFIX...]
#   e.g. bash scripts/mutants.sh safety/      (the safety mutations only)
# See docs/testing.md, "Mutants".
set -euo pipefail
cd "$(dirname "$0")/.."
exec python3 scripts/mutants.py "$@"
