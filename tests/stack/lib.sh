# shellcheck shell=bash
# What the test stack's scripts (mailstack.sh, cyrus.sh, mtas.sh) share: their port base, their
# daemons' processes, their listeners and logs. Sourced, not run; the caller defines log() and
# die(), and fail_with_logs MESSAGE (says what failed, shows its logs, exits) for
# wait_listeners.

# The first port of a stack: MAILSTACK_PORT_BASE (default 20000). A stack uses ports up to
# base+994, so stacks at bases 1000 apart never collide.
port_base() {
  local base=${MAILSTACK_PORT_BASE:-20000}
  if ! [[ $base =~ ^[0-9]+$ ]] || ((base < 1024 || base + 994 > 65535)); then
    die "MAILSTACK_PORT_BASE=$base: need an integer >= 1024 with base+994 <= 65535"
  fi
  echo "$base"
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

# ---------------------------------------------------------------- processes

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

# wait_gone_or_kill SECONDS PID...: wait for processes already told to stop; SIGKILL what is
# left after SECONDS, and fail if even that does not end them.
wait_gone_or_kill() {
  local seconds=$1 pid; shift
  wait_gone "$seconds" "$@" && return 0
  log "still alive after $seconds s, sending SIGKILL"
  for pid in "$@"; do
    if is_alive "$pid"; then kill -KILL "$pid" 2>/dev/null || true; fi
  done
  wait_gone 2 "$@" || die "processes survived SIGKILL: $*"
}

# ---------------------------------------------------------------- listeners

# 0 if something accepts connections on HOST PORT.
port_in_use() {
  (exec 3<>"/dev/tcp/$1/$2") 2>/dev/null
}

# wait_ports_free SECONDS PORT...: fails at once if something listens on a PORT (another stack,
# a system daemon), and waits up to SECONDS while a PORT is the local end of a connection: a
# port base inside the ephemeral range (32768-60999) shares its ports with every client on the
# machine, and a daemon cannot bind a port a connection holds. Closed connections (TIME-WAIT)
# are no obstacle.
wait_ports_free() {
  local seconds=$1 port holders
  shift
  local deadline=$((SECONDS + seconds))
  for port in "$@"; do
    while holders=$(ss -Htan exclude time-wait "( sport = :$port )") && [[ -n $holders ]]; do
      [[ $holders != *LISTEN* ]] ||
        die "port $port is already in use (another stack? set MAILSTACK_PORT_BASE)"
      ((SECONDS < deadline)) ||
        die "port $port is still the local end of a connection after $seconds s; choose a" \
            "MAILSTACK_PORT_BASE outside the ephemeral range (32768-60999)"
      sleep 0.2
    done
  done
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

# wait_listeners SECONDS READY ALIVE NAME=HOST:PORT...: runs `READY NAME HOST PORT` for each
# listener until every one has answered 0, and `ALIVE` (which fails the start itself if a daemon
# died) in between; fails the start naming those still silent after SECONDS.
wait_listeners() {
  local seconds=$1 ready=$2 alive=$3 listener name hp
  shift 3
  local deadline=$((SECONDS + seconds))
  local -A pending=()
  for listener in "$@"; do pending[${listener%%=*}]=${listener#*=}; done
  while ((${#pending[@]} > 0)); do
    for name in "${!pending[@]}"; do
      hp=${pending[$name]}
      "$ready" "$name" "${hp%:*}" "${hp##*:}" && unset "pending[$name]"
    done
    ((${#pending[@]} == 0)) && break
    "$alive"
    if ((SECONDS >= deadline)); then
      local still=""
      for name in "${!pending[@]}"; do still+=" $name:${pending[$name]}"; done
      fail_with_logs "not ready after ${seconds}s:$still"
    fi
    sleep 0.1
  done
}

# ---------------------------------------------------------------- logs

# The last lines of each LOG_FILE given that has anything in it, to stderr.
show_log_tails() {
  local file
  for file in "$@"; do
    if [[ -s $file ]]; then
      echo "----- tail $file" >&2
      tail -n 25 "$file" >&2
    fi
  done
}
