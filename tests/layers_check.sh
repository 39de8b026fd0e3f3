#!/usr/bin/env bash
# Fails when a file includes a header of a layer above its own. The layers, lowest first:
# common <- protocols <- probes (the probe kinds) <- agent. Each may include its own layer and
# those below it, never one above (docs/architecture.md).
#
# Usage: tests/layers_check.sh [SOURCE_DIR]
set -euo pipefail
cd "${1:-$(dirname "$0")/..}"

layers=(common protocols probes agent)
status=0
checked=0
for ((level = 0; level < ${#layers[@]}; level++)); do
  layer=${layers[level]}
  allowed=$(IFS='|'; echo "${layers[*]:0:level+1}")
  while IFS= read -r -d '' file; do
    checked=$((checked + 1))
    while IFS=: read -r line include; do
      if [[ ! $include =~ ^($allowed)/ ]]; then
        echo "$file:$line: layer '$layer' includes \"$include\", which is above it" >&2
        status=1
      fi
    done < <(grep -nE '^[[:space:]]*#[[:space:]]*include[[:space:]]*"' "$file" |
      sed -E 's/^([0-9]+):[^"]*"([^"]+)".*/\1:\2/')
  done < <(find "$layer" -type f \( -name '*.hpp' -o -name '*.cpp' \) -print0)
done
((checked > 0)) || { echo "no source files found under ${layers[*]}" >&2; exit 1; }
((status == 0)) && echo "layers: $checked files, every include points at its own layer or one below"
exit $status
