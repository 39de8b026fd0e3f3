#!/usr/bin/env bash
# The man page, the parsers and --help name the same flags: a flag added to agent/cli.cpp without
# an entry under OPTIONS in packaging/mailcanary.1 (or the reverse, or a --help line missing)
# fails; so does one of `mailcanary check` (agent/check_command.cpp) against CHECK OPTIONS and
# `mailcanary check --help`.
#
# Usage: man_page_check.sh SOURCE_DIR MAILCANARY_BINARY
set -euo pipefail
source_dir=$1 binary=$2
man_page=$source_dir/packaging/mailcanary.1
status=0

# check_flags PARSER SECTION HELP_COMMAND...: the flags PARSER compares the argument's name with
# (`name == "--config.file"`), the term of each .TP entry under the man page's SECTION (roff's \-
# made plain, any =VALUE cut off) and the lines of HELP_COMMAND's output that start with a flag.
check_flags() {
  local parser=$1 section=$2
  shift 2
  local parser_flags man_flags help_flags count
  parser_flags=$(grep -oE 'name == "-[^"]+"' "$source_dir/$parser" | cut -d'"' -f2 | sort -u)
  man_flags=$(awk -v section="$section" \
    '/^\.SH /{in_section = (substr($0, 5) == section)} in_section && prev == ".TP" {print} {prev = $0}' \
    "$man_page" | sed 's/\\-/-/g' | grep -oE '(^|[ "])-{1,2}[a-z0-9][a-z0-9.-]*' | tr -d ' "' | sort -u)
  help_flags=$("$@" | grep -E '^ +-' | grep -oE '(^|[ ,])-{1,2}[a-z0-9][a-z0-9.-]*' |
    tr -d ' ,' | sort -u)
  count=$(wc -w <<<"$parser_flags")
  if ((count < 5)); then
    echo "man_page_check: found only $count flags in $parser; has its parser changed shape?" >&2
    status=1
    return
  fi
  compare() {
    local what=$1 flags=$2 missing extra
    missing=$(comm -23 <(echo "$parser_flags") <(echo "$flags"))
    extra=$(comm -13 <(echo "$parser_flags") <(echo "$flags"))
    if [[ -n $missing ]]; then
      echo "man_page_check: $what lacks flags $parser accepts: ${missing//$'\n'/ }" >&2
      status=1
    fi
    if [[ -n $extra ]]; then
      echo "man_page_check: $what names flags $parser does not accept: ${extra//$'\n'/ }" >&2
      status=1
    fi
  }
  compare "the man page ($man_page, $section)" "$man_flags"
  compare "$*" "$help_flags"
  echo "man_page_check: $section: the man page and --help name all $count flags:" \
    "${parser_flags//$'\n'/ }"
}

check_flags agent/cli.cpp OPTIONS "$binary" --help
check_flags agent/check_command.cpp "CHECK OPTIONS" "$binary" check --help
exit $status
