# shellcheck shell=bash
# What the test stack's scripts (mailstack.sh, cyrus.sh) share: their daemons' processes and
# the first line their listeners say. Sourced; the caller defines log() and die().

# Echo PID from FILE if that process exists and is not a zombie.
live_pid() {
  local pid
  [[ -r $1 ]] || return 1
  pid=$(tr -dc '0-9' <"$1")
  [[ -n $pid ]] && is_alive "$pid" && echo "$pid"
}

# PID 1 here reaps orphans late: a dead daemon can linger as a zombie.
is_alive() {
  local state
  state=$(awk '/^State:/ {print $2}' "/proc/$1/status" 2>/dev/null) || return 1
  [[ -n $state && $state != Z && $state != X ]]
}

# Echo each PID given (empty ones are skipped) and its children's: all must be gone before the
# ports are free.
with_children() {
  local pid
  for pid in "$@"; do
    [[ -n $pid ]] || continue
    echo "$pid"
    ps -o pid= --ppid "$pid" 2>/dev/null | tr -d " " || true
  done
}

# Wait until every pid given is gone or a zombie; return 1 on timeout.
wait_gone() {
  local deadline=$((SECONDS + $1)) pid; shift
  while ((SECONDS < deadline)); do
    local any=0
    for pid in "$@"; do is_alive "$pid" && any=1; done
    ((any == 0)) && return 0
    sleep 0.1
  done
  return 1
}

# After the daemons were asked to stop: wait up to SECONDS for the PIDs given, then SIGKILL
# what is left.
wait_gone_or_kill() {
  local seconds=$1 pid; shift
  wait_gone "$seconds" "$@" && return 0
  log "still alive after $seconds s, sending SIGKILL"
  for pid in "$@"; do
    if is_alive "$pid"; then kill -KILL "$pid" 2>/dev/null || true; fi
  done
  wait_gone 2 "$@" || die "processes survived SIGKILL: $*"
}

# Plain TCP: echo the first line (the banner), then send CMD (QUIT/LOGOUT).
banner_plain() {
  local host=$1 port=$2 cmd=$3
  (line=""
   exec 3<>"/dev/tcp/$host/$port" || exit 1
   IFS= read -r -t 2 line <&3 || true
   printf '%s\r\n' "$cmd" >&3 || true
   printf '%s' "${line%$'\r'}") 2>/dev/null
}

# banner_tls HOST PORT CMD SERVER_NAME CA_FILE: implicit TLS, the certificate verified for
# SERVER_NAME against CA_FILE; echo the first line. -quiet implies -ign_eof, so s_client waits
# for the server to close after our QUIT/LOGOUT.
banner_tls() {
  local host=$1 port=$2 cmd=$3 server_name=$4 ca_file=$5 out
  out=$(printf '%s\r\n' "$cmd" | timeout 5 openssl s_client -quiet \
          -connect "$host:$port" -servername "$server_name" \
          -CAfile "$ca_file" -verify_return_error 2>/dev/null) || true
  out=${out%%$'\n'*}
  printf '%s' "${out%$'\r'}"
}

# Dies naming the first HOST:PORT given that something already listens on (another stack, a
# system daemon), which would otherwise make the start fail with a confusing log.
die_if_listening() {
  local hp
  for hp in "$@"; do
    if (exec 3<>"/dev/tcp/${hp%:*}/${hp##*:}") 2>/dev/null; then
      die "port $hp is already in use (another stack? set MAILSTACK_PORT_BASE)"
    fi
  done
}

# fail_showing_logs MESSAGE LOG_FILE...: says MESSAGE, shows the end of each log file that has
# anything in it, and exits 1.
fail_showing_logs() {
  log "error: $1"
  shift
  local f
  for f in "$@"; do
    if [[ -s $f ]]; then
      echo "----- tail $f" >&2
      tail -n 25 "$f" >&2
    fi
  done
  exit 1
}

# read_env_file FILE ARRAY: the KEY=VALUE lines of FILE (stack.env) into the associative array
# named ARRAY.
# shellcheck disable=SC2034  # `into` is a nameref: it fills the caller's array
read_env_file() {
  local -n into=$2
  local line
  while IFS= read -r line; do
    [[ $line == *=* ]] && into[${line%%=*}]=${line#*=}
  done <"$1"
}
