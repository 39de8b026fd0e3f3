#!/usr/bin/env bash
# The man page, the parser and --help name the same flags: a flag added to agent/cli.cpp without
# an entry under OPTIONS in packaging/mailcanary.1 (or the reverse, or a --help line missing) fails.
#
# Usage: man_page_check.sh SOURCE_DIR MAILCANARY_BINARY
set -euo pipefail
source_dir=$1 binary=$2
man_page=$source_dir/packaging/mailcanary.1

# The flags parse_cli compares the argument's name with: `name == "--config.file"`.
parser_flags=$(grep -oE 'name == "-[^"]+"' "$source_dir/agent/cli.cpp" | cut -d'"' -f2 | sort -u)
# The term of each .TP entry under OPTIONS, with roff's \- made plain and any =VALUE cut off.
man_flags=$(awk '/^\.SH /{in_options = ($2 == "OPTIONS")} in_options && prev == ".TP" {print} {prev = $0}' \
  "$man_page" | sed 's/\\-/-/g' | grep -oE '(^|[ "])-{1,2}[a-z][a-z.-]*' | tr -d ' "' | sort -u)
# The flags --help lists: each of its lines that starts with a flag.
help_flags=$("$binary" --help | grep -E '^ +-' | grep -oE '(^|[ ,])-{1,2}[a-z][a-z.-]*' |
  tr -d ' ,' | sort -u)

count=$(wc -w <<<"$parser_flags")
if ((count < 5)); then
  echo "man_page_check: found only $count flags in agent/cli.cpp; has parse_cli changed shape?" >&2
  exit 1
fi
status=0
compare() {
  local what=$1 flags=$2 missing extra
  missing=$(comm -23 <(echo "$parser_flags") <(echo "$flags"))
  extra=$(comm -13 <(echo "$parser_flags") <(echo "$flags"))
  if [[ -n $missing ]]; then
    echo "man_page_check: $what lacks flags the parser accepts: ${missing//$'\n'/ }" >&2
    status=1
  fi
  if [[ -n $extra ]]; then
    echo "man_page_check: $what names flags the parser does not accept: ${extra//$'\n'/ }" >&2
    status=1
  fi
}
compare "the man page ($man_page, OPTIONS)" "$man_flags"
compare "mailcanary --help" "$help_flags"
((status == 0)) && echo "man_page_check: the man page and --help name all $count flags:" \
  "${parser_flags//$'\n'/ }"
exit $status
