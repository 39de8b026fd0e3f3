#!/usr/bin/env bash
# Real Exim 4 and OpenSMTPD beside the Postfix of mailstack.sh, on 127.0.0.1, in the mail stack's
# directory: they deliver over LMTP to its Dovecot and present its certificate.
#
#   mtas.sh start   DIR          # (re)start both; DIR holds a running mail stack; writes DIR/mtas.env
#   mtas.sh stop    DIR          # stop both; exit 0 also when nothing was running
#   mtas.sh status  DIR          # exit 0 if both are up
#   mtas.sh exim    DIR ARGS...  # exim4 -C <its configuration> ARGS (e.g. -bp, -bpc, -Mrm ID)
#   mtas.sh smtpctl DIR ARGS...  # OpenSMTPD's smtpctl ARGS (e.g. show queue)
#
# Both packages conflict with Postfix, so scripts/install-deps.sh fetches them (apt-get download)
# and unpacks them (dpkg -x) under MAILCANARY_MTA_CACHE (default /var/cache/mailcanary/mtas). Each
# daemon runs in a mount namespace of its own (unshare --mount), where a private /etc/passwd and
# /etc/group hold its users, /etc/resolv.conf names only 127.0.0.1 (no query leaves the machine),
# and OpenSMTPD's compiled-in /var/spool/smtpd, /run/smtpd.sock and /usr/libexec/opensmtpd are
# directories under DIR. Ports from MAILSTACK_PORT_BASE (default 20000), as the mail stack's:
#   Exim       +225 SMTP, STARTTLS, then AUTH PLAIN/LOGIN/CRAM-MD5   +226 implicit TLS and AUTH
#              +227 SMTP whose STARTTLS is capped at TLS 1.2
#   OpenSMTPD  +325 SMTP without TLS   +326 STARTTLS   +327 implicit TLS; on the last two every
#              handshake fails (OpenSMTPD 6.8 with Debian 12's OpenSSL 3)
# Both refuse unknown users, $REFUSED_SENDER at MAIL FROM, $TEMPFAIL_RCPT with a 4xx, and
# mail from $REJECTED_AFTER_DATA_SENDER after the final dot. See docs/testing.md.
set -Eeuo pipefail
trap 'printf "mtas: error: command failed (line %s): %s\n" "$LINENO" "$BASH_COMMAND" >&2' ERR

readonly DOMAIN=example.test
readonly SERVER_NAME=mail.example.test
readonly HOST=127.0.0.1
readonly USERS=(probe other)
readonly TEMPFAIL_RCPT=tempfail@$DOMAIN
readonly REFUSED_SENDER=refused-sender@mailcanary.test
readonly REJECTED_AFTER_DATA_SENDER=rejected-after-data@mailcanary.test
readonly START_TIMEOUT=30
readonly STOP_TIMEOUT=8
readonly MTA_CACHE=${MAILCANARY_MTA_CACHE:-/var/cache/mailcanary/mtas}
readonly EXIM_ROOT=$MTA_CACHE/roots/exim4-daemon-light
readonly SMTPD_ROOT=$MTA_CACHE/roots/opensmtpd
readonly EXIM_BIN=$EXIM_ROOT/usr/sbin/exim4

PATH=/usr/sbin:/usr/bin:/sbin:/bin:$PATH

log() { printf 'mtas: %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }
# shellcheck source=tests/stack/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

usage() {
  echo "usage: $0 start|stop|status DIR   (env: MAILSTACK_PORT_BASE, default 20000)" >&2
  echo "       $0 exim|smtpctl DIR ARGS..." >&2
  exit 2
}

# ---------------------------------------------------------------- paths/ports

set_paths() {
  DIR=$1
  TLS=$DIR/tls                  # the mail stack's CA and server certificate
  SECRETS=$DIR/secrets
  LOGS=$DIR/log
  NS_ETC=$DIR/mtas/etc          # passwd, group and resolv.conf of both namespaces
  EXIM_DIR=$DIR/exim            # exim.conf, its key, spool/, log/ (Exim's own logs)
  SMTPD_DIR=$DIR/opensmtpd      # smtpd.conf, and var/, run/, libexec/ mounted over the system's
  # Where its namespace shows the unpacked package: its own /var hides $MTA_CACHE.
  SMTPD_PACKAGE=$SMTPD_DIR/package
  SMTPD_BIN=$SMTPD_PACKAGE/usr/sbin/smtpd
  EXIM_PID_FILE=$EXIM_DIR/daemon.pid
  SMTPD_PID_FILE=$SMTPD_DIR/daemon.pid
}

set_ports() {
  local base
  base=$(port_base)
  EXIM_SMTP_PORT=$((base + 225))
  EXIM_SMTPS_PORT=$((base + 226))
  EXIM_TLS12_PORT=$((base + 227))
  SMTPD_SMTP_PORT=$((base + 325))
  SMTPD_STARTTLS_PORT=$((base + 326))
  SMTPD_SMTPS_PORT=$((base + 327))
  ALL_PORTS=("$EXIM_SMTP_PORT" "$EXIM_SMTPS_PORT" "$EXIM_TLS12_PORT"
             "$SMTPD_SMTP_PORT" "$SMTPD_STARTTLS_PORT" "$SMTPD_SMTPS_PORT")
}

# ---------------------------------------------------------------- preconditions

check_prereqs() {
  [[ $(id -u) -eq 0 ]] || die "must run as root (mount namespaces; the daemons drop privileges)"
  command -v unshare >/dev/null || die "unshare (util-linux) is missing"
  local bin missing
  for bin in "$EXIM_BIN" "$SMTPD_ROOT/usr/sbin/smtpd" "$SMTPD_ROOT/usr/libexec/opensmtpd/mail.lmtp"; do
    [[ -x $bin ]] || die "$bin is missing -- run: bash scripts/install-deps.sh"
    missing=$(ldd "$bin" | awk '/not found/ {print $1}')
    [[ -z $missing ]] || die "$bin needs $missing -- run: bash scripts/install-deps.sh"
  done
}

# They deliver to the mail stack's Dovecot and use its certificate and password.
read_mail_stack() {
  [[ -r $DIR/stack.env ]] ||
    die "no mail stack in $DIR (no stack.env): run tests/stack/mailstack.sh start $DIR first"
  LMTP_PORT=$(sed -n 's/^MAILSTACK_LMTP_PORT=//p' "$DIR/stack.env")
  [[ $LMTP_PORT =~ ^[0-9]+$ ]] || die "$DIR/stack.env has no MAILSTACK_LMTP_PORT"
  [[ $(banner_plain "$HOST" "$LMTP_PORT" QUIT) == "220 "* ]] ||
    die "the mail stack's LMTP ($HOST:$LMTP_PORT) does not answer: is it running?"
  [[ -s $TLS/server.pem && -s $TLS/server.key && -s $SECRETS/probe.password ]] ||
    die "the mail stack in $DIR has no certificate or password"
  PASSWORD=$(<"$SECRETS/probe.password")
  # It goes into Exim's expansions unquoted.
  [[ $PASSWORD =~ ^[A-Za-z0-9]+$ ]] || die "unexpected characters in $SECRETS/probe.password"
}

check_ports_free() {
  wait_ports_free "$START_TIMEOUT" "${ALL_PORTS[@]}"
}

# ---------------------------------------------------------------- namespaces

# Users the packages' maintainer scripts would have created, plus vmail, as whom OpenSMTPD runs
# its LMTP client. Each gets an id unused on this machine, the same as uid and gid.
readonly MTA_USERS=(Debian-exim opensmtpd opensmtpq vmail)
declare -A ID_OF=()
allocate_ids() {
  local name id=64999 taken
  taken=$(cut -d: -f3 /etc/passwd /etc/group | sort -u)
  for name in "${MTA_USERS[@]}"; do
    while grep -qx "$id" <<<"$taken"; do id=$((id - 1)); done
    ID_OF[$name]=$id
    id=$((id - 1))
  done
}

write_namespace_files() {
  mkdir -p "$NS_ETC" "$SMTPD_DIR/vmail"
  # The machine's entries, but not its own users of these names (were the packages installed).
  local name home pattern
  pattern="^($(IFS='|'; echo "${MTA_USERS[*]}")):"
  grep -Ev "$pattern" /etc/passwd >"$NS_ETC/passwd" || true
  grep -Ev "$pattern" /etc/group >"$NS_ETC/group" || true
  for name in "${MTA_USERS[@]}"; do
    home=/nonexistent
    [[ $name == vmail ]] && home=$SMTPD_DIR/vmail   # OpenSMTPD looks for ~/.forward
    printf '%s:x:%s:%s:mailcanary test stack:%s:/usr/sbin/nologin\n' \
      "$name" "${ID_OF[$name]}" "${ID_OF[$name]}" "$home" >>"$NS_ETC/passwd"
    printf '%s:x:%s:\n' "$name" "${ID_OF[$name]}" >>"$NS_ETC/group"
  done
  chown "${ID_OF[vmail]}:${ID_OF[vmail]}" "$SMTPD_DIR/vmail"
  echo "nameserver 127.0.0.1" >"$NS_ETC/resolv.conf"
  chmod 0644 "$NS_ETC/passwd" "$NS_ETC/group" "$NS_ETC/resolv.conf"
}

# NS_CMD[@] COMMAND...: COMMAND in a new mount namespace with the MTA's private files mounted.
# The mounts over /etc go first: should /etc/resolv.conf be a link into /run, it then dangles
# once /run is replaced, and the resolver falls back to 127.0.0.1 all the same.
set_namespace_command() {
  local mounts="set -e" target
  for target in passwd group resolv.conf; do
    mounts+=$'\n'"mount --bind $(printf %q "$NS_ETC/$target") /etc/$target"
  done
  if [[ $1 == opensmtpd ]]; then
    mounts+=$'\n'"mount --bind $(printf %q "$SMTPD_ROOT") $(printf %q "$SMTPD_PACKAGE")"
    for target in var run usr/libexec; do
      mounts+=$'\n'"mount --bind $(printf %q "$SMTPD_DIR/${target#usr/}") /$target"
    done
  fi
  NS_CMD=(unshare --mount --propagation private -- bash -c "$mounts"$'\nexec "$@"' "$1")
}

# ---------------------------------------------------------------- Exim

write_exim_config() {
  local exim=${ID_OF[Debian-exim]}
  rm -rf "${EXIM_DIR:?}/spool"   # a fresh queue on every start
  mkdir -p "$EXIM_DIR/spool" "$EXIM_DIR/log" "$LOGS"
  chown -R "$exim:$exim" "$EXIM_DIR/spool" "$EXIM_DIR/log"   # ids may differ from last time
  # Exim reads its key after it gave up root.
  install -o "$exim" -g "$exim" -m 0600 "$TLS/server.key" "$EXIM_DIR/server.key"
  local users
  printf -v users '%s : ' "${USERS[@]}"
  users=${users% : }
  cat >"$EXIM_DIR/exim.conf" <<EOF
# Generated by tests/stack/mtas.sh -- private test instance, do not edit.
exim_path = $EXIM_BIN
primary_hostname = $SERVER_NAME
spool_directory = $EXIM_DIR/spool
pid_file_path = $EXIM_DIR/spool/exim-daemon.pid
log_file_path = $EXIM_DIR/log/%slog
keep_environment =
daemon_smtp_ports = $EXIM_SMTP_PORT : $EXIM_SMTPS_PORT : $EXIM_TLS12_PORT
tls_on_connect_ports = $EXIM_SMTPS_PORT
local_interfaces = <; $HOST
host_lookup =
rfc1413_hosts =
# A multi-line greeting, as many sites have.
smtp_banner = $SERVER_NAME ESMTP Exim \$version_number\nmailcanary test stack

tls_advertise_hosts = *
tls_certificate = $TLS/server.pem
tls_privatekey = $EXIM_DIR/server.key
# GnuTLS priority strings: +227 offers nothing newer than TLS 1.2.
tls_require_ciphers = \${if =={\$received_port}{$EXIM_TLS12_PORT}{NORMAL:-VERS-TLS1.3}{NORMAL}}
# AUTH only once the connection is encrypted, as Debian's own configuration does.
auth_advertise_hosts = \${if eq{\$tls_in_cipher}{}{}{*}}

domainlist local_domains = $DOMAIN
acl_smtp_mail = acl_check_mail
acl_smtp_rcpt = acl_check_rcpt
acl_smtp_data = acl_check_data

begin acl
acl_check_mail:
  deny    senders = $REFUSED_SENDER
          message = 5.7.1 Sender refused by policy (mailcanary test stack)
  accept
acl_check_rcpt:
  defer   recipients = $TEMPFAIL_RCPT
          message = 4.7.1 Try again later (mailcanary test stack)
  accept  domains = +local_domains
          local_parts = $users
  deny    message = 5.1.1 Unknown user (mailcanary test stack)
acl_check_data:
  deny    senders = $REJECTED_AFTER_DATA_SENDER
          message = 5.7.1 Message rejected by content policy (mailcanary test stack)
  accept

# Only the test domain is routed anywhere (to the mail stack's Dovecot); nothing else is.
begin routers
dovecot:
  driver = manualroute
  domains = +local_domains
  route_list = * $HOST
  self = send
  transport = dovecot_lmtp

begin transports
dovecot_lmtp:
  driver = smtp
  protocol = lmtp
  port = $LMTP_PORT
  allow_localhost
  hosts_avoid_tls = *

begin retry
*  *  F,1h,1m

begin authenticators
plain:
  driver = plaintext
  public_name = PLAIN
  server_prompts = :
  server_condition = \${if and{{eq{\$auth2}{probe@$DOMAIN}}{eq{\$auth3}{$PASSWORD}}}}
login:
  driver = plaintext
  public_name = LOGIN
  server_prompts = Username:: : Password::
  server_condition = \${if and{{eq{\$auth1}{probe@$DOMAIN}}{eq{\$auth2}{$PASSWORD}}}}
cram_md5:
  driver = cram_md5
  public_name = CRAM-MD5
  server_secret = \${if eq{\$auth1}{probe@$DOMAIN}{$PASSWORD}fail}
EOF
  # Exim refuses a configuration others may write; it holds the password, so others may not
  # read it either.
  chown "root:$exim" "$EXIM_DIR/exim.conf"
  chmod 0640 "$EXIM_DIR/exim.conf"
}

# ---------------------------------------------------------------- OpenSMTPD

write_smtpd_config() {
  rm -rf "${SMTPD_DIR:?}/var" "${SMTPD_DIR:?}/run"   # a fresh queue on every start
  mkdir -p "$SMTPD_DIR/var/spool/smtpd" "$SMTPD_DIR/var/lib/opensmtpd/empty" "$SMTPD_DIR/run" \
    "$SMTPD_DIR/libexec" "$SMTPD_PACKAGE" "$LOGS"
  chmod 0711 "$SMTPD_DIR/var/spool/smtpd"
  ln -sfn /run "$SMTPD_DIR/var/run"
  ln -sfn "$SMTPD_PACKAGE/usr/libexec/opensmtpd" "$SMTPD_DIR/libexec/opensmtpd"
  local recipients="" users="" u
  for u in "${USERS[@]}"; do
    recipients+="${recipients:+, }\"$u@$DOMAIN\""
    users+="${users:+, }\"$u@$DOMAIN\" = \"vmail\""
  done
  cat >"$SMTPD_DIR/smtpd.conf" <<EOF
# Generated by tests/stack/mtas.sh -- private test instance, do not edit.
pki $SERVER_NAME cert "$TLS/server.pem"
pki $SERVER_NAME key "$TLS/server.key"

table recipients { $recipients }
table vusers { $users }
table refused_senders { "$REFUSED_SENDER" }
table tempfail_recipients { "$TEMPFAIL_RCPT" }
table rejected_after_data_senders { "$REJECTED_AFTER_DATA_SENDER" }

# Built-in filters (no filter program): a decision at MAIL FROM, RCPT TO, and after the final dot.
filter refused_sender phase mail-from match mail-from <refused_senders> \\
  reject "550 5.7.1 Sender refused by policy (mailcanary test stack)"
filter tempfail_recipient phase rcpt-to match rcpt-to <tempfail_recipients> \\
  reject "451 4.7.1 Try again later (mailcanary test stack)"
filter rejected_after_data phase commit match mail-from <rejected_after_data_senders> \\
  reject "554 5.7.1 Message rejected by content policy (mailcanary test stack)"
filter policy chain { refused_sender, tempfail_recipient, rejected_after_data }

listen on $HOST port $SMTPD_SMTP_PORT hostname $SERVER_NAME filter policy
listen on $HOST port $SMTPD_STARTTLS_PORT hostname $SERVER_NAME tls pki $SERVER_NAME filter policy
listen on $HOST port $SMTPD_SMTPS_PORT hostname $SERVER_NAME smtps pki $SERVER_NAME filter policy

# Known users go to the mail stack's Dovecot; any other recipient matches no rule (550).
action dovecot lmtp "$HOST:$LMTP_PORT" rcpt-to virtual <vusers>
match from any for rcpt-to <recipients> action dovecot
EOF
  chmod 0600 "$SMTPD_DIR/smtpd.conf"
}

# ---------------------------------------------------------------- starting

# start_daemon NAME PID_FILE CHECK RUN COMMAND...: `COMMAND CHECK` checks the configuration
# (output in LOGS/NAME-check.log), then `COMMAND RUN` runs the daemon in the foreground, so that
# the process started is the daemon (output appended to LOGS/NAME.log), in its own session: it
# outlives this script and whatever ran it.
start_daemon() {
  local name=$1 pid_file=$2 check=$3 run=$4
  shift 4
  set_namespace_command "$name"
  "${NS_CMD[@]}" "$@" "$check" </dev/null >"$LOGS/$name-check.log" 2>&1 ||
    fail_with_logs "$name refused its configuration ($*)"
  setsid "${NS_CMD[@]}" "$@" "$run" </dev/null >>"$LOGS/$name.log" 2>&1 &
  echo $! >"$pid_file"
}

# OpenSMTPD logs to stderr when in the foreground; what this start of it logged begins at
# SMTPD_LOG_OFFSET.
start_smtpd() {
  SMTPD_LOG_OFFSET=$(stat -c %s "$LOGS/opensmtpd.log" 2>/dev/null || echo 0)
  SMTPD_STARTS=$((SMTPD_STARTS + 1))
  start_daemon opensmtpd "$SMTPD_PID_FILE" -n -d "$SMTPD_BIN" -f "$SMTPD_DIR/smtpd.conf"
}

# ---------------------------------------------------------------- readiness

# The pid written at start is the daemon once unshare and bash have exec'd it.
daemon_up() {
  local pid
  pid=$(live_pid "$1") && [[ $(readlink "/proc/$pid/exe" 2>/dev/null) == "$2" ]]
}

# listener_ready NAME HOST PORT: 0 once the listener greets as it should.
listener_ready() {
  case $1 in
    exim_smtps)      [[ $(banner_tls "$2" "$3" QUIT "$SERVER_NAME" "$TLS/ca.pem") == 220[-\ ]* ]] ;;
    exim_*)          [[ $(banner_plain "$2" "$3" QUIT) == 220[-\ ]* ]] ;;
    # Its TLS handshakes fail; that it listens is all there is to see.
    opensmtpd_smtps) port_in_use "$2" "$3" ;;
    opensmtpd_*)     [[ $(banner_plain "$2" "$3" QUIT) == "220 "* ]] ;;
  esac
}

# Exim waits and tries again when a port it binds is taken; OpenSMTPD exits. A port can be
# taken between the check and the bind when the port base lies in the ephemeral range and a
# client's connection happened to get it: OpenSMTPD is then started again, twice at most.
daemons_alive() {
  live_pid "$EXIM_PID_FILE" >/dev/null || fail_with_logs "Exim died during start"
  live_pid "$SMTPD_PID_FILE" >/dev/null && return 0
  if ((SMTPD_STARTS < 3)) && grep -q 'bind: Address already in use' \
       < <(tail -c +$((SMTPD_LOG_OFFSET + 1)) "$LOGS/opensmtpd.log"); then
    log "OpenSMTPD found a port taken by a connection; starting it again"
    wait_ports_free "$START_TIMEOUT" "$SMTPD_SMTP_PORT" "$SMTPD_STARTTLS_PORT" "$SMTPD_SMTPS_PORT"
    start_smtpd
    return 0
  fi
  fail_with_logs "OpenSMTPD died during start"
}

wait_ready() {
  wait_listeners "$START_TIMEOUT" listener_ready daemons_alive \
    "exim_smtp=$HOST:$EXIM_SMTP_PORT" "exim_smtps=$HOST:$EXIM_SMTPS_PORT" \
    "exim_tls12=$HOST:$EXIM_TLS12_PORT" "opensmtpd_smtp=$HOST:$SMTPD_SMTP_PORT" \
    "opensmtpd_starttls=$HOST:$SMTPD_STARTTLS_PORT" "opensmtpd_smtps=$HOST:$SMTPD_SMTPS_PORT"
  daemon_up "$EXIM_PID_FILE" "$EXIM_BIN" || fail_with_logs "the Exim daemon is not the process started"
  daemon_up "$SMTPD_PID_FILE" "$SMTPD_BIN" ||
    fail_with_logs "the OpenSMTPD daemon is not the process started"
}

# A failed start leaves nothing running.
fail_with_logs() {
  log "error: $*"
  show_log_tails "$LOGS/exim-check.log" "$LOGS/exim.log" "$EXIM_DIR/log/mainlog" \
    "$EXIM_DIR/log/paniclog" "$LOGS/opensmtpd-check.log" "$LOGS/opensmtpd.log"
  stop_mtas
  exit 1
}

# ---------------------------------------------------------------- stopping

stop_mtas() {
  local exim smtpd pid pids=()
  exim=$(live_pid "$EXIM_PID_FILE" || true)
  smtpd=$(live_pid "$SMTPD_PID_FILE" || true)
  if [[ -z $exim && -z $smtpd ]]; then
    log "nothing running in $DIR"
    return 0
  fi
  # Exim's delivery processes and OpenSMTPD's helpers must be gone before the ports are free.
  local pid_list
  pid_list=$(with_children "$exim" "$smtpd")
  mapfile -t pids <<<"$pid_list"
  for pid in $exim $smtpd; do kill -TERM "$pid" 2>/dev/null || true; done
  wait_gone_or_kill "$STOP_TIMEOUT" "${pids[@]}"
  rm -f "$EXIM_PID_FILE" "$SMTPD_PID_FILE"
  log "stopped (exim ${exim:-none}, opensmtpd ${smtpd:-none})"
}

# ---------------------------------------------------------------- mtas.env

# What scripts/install-deps.sh unpacked into ROOT: ROOT.unpacked says "PACKAGE VERSION".
version_of() { cut -d ' ' -f 2 "$1.unpacked" 2>/dev/null || echo unknown; }

write_env() {
  cat >"$DIR/mtas.env.tmp" <<EOF
MTAS_HOST=$HOST
MTAS_REFUSED_SENDER=$REFUSED_SENDER
MTAS_REJECTED_AFTER_DATA_SENDER=$REJECTED_AFTER_DATA_SENDER
MTAS_TEMPFAIL_RCPT=$TEMPFAIL_RCPT
EXIM_VERSION=$(version_of "$EXIM_ROOT")
EXIM_SMTP_PORT=$EXIM_SMTP_PORT
EXIM_SMTPS_PORT=$EXIM_SMTPS_PORT
EXIM_TLS12_PORT=$EXIM_TLS12_PORT
EXIM_LOG=$EXIM_DIR/log/mainlog
OPENSMTPD_VERSION=$(version_of "$SMTPD_ROOT")
OPENSMTPD_SMTP_PORT=$SMTPD_SMTP_PORT
OPENSMTPD_STARTTLS_PORT=$SMTPD_STARTTLS_PORT
OPENSMTPD_SMTPS_PORT=$SMTPD_SMTPS_PORT
OPENSMTPD_LOG=$LOGS/opensmtpd.log
EOF
  mv "$DIR/mtas.env.tmp" "$DIR/mtas.env"
}

# ---------------------------------------------------------------- commands

# DIR as an absolute path; it must exist (it is the mail stack's).
open_dir() {
  [[ $(id -u) -eq 0 ]] || die "must run as root"
  [[ -d $DIR ]] || die "$DIR does not exist"
  set_paths "$(cd "$DIR" && pwd -P)"
}

cmd_start() {
  local started_ns
  started_ns=$(date +%s%N)
  check_prereqs
  open_dir
  read_mail_stack
  if live_pid "$EXIM_PID_FILE" >/dev/null || live_pid "$SMTPD_PID_FILE" >/dev/null; then
    log "already running, restarting"
    stop_mtas
  fi
  rm -f "$DIR/mtas.env"
  check_ports_free
  allocate_ids
  write_namespace_files
  write_exim_config
  write_smtpd_config
  start_daemon exim "$EXIM_PID_FILE" -bV -bdf "$EXIM_BIN" -C "$EXIM_DIR/exim.conf"
  SMTPD_STARTS=0
  start_smtpd
  wait_ready
  write_env
  local ms=$((($(date +%s%N) - started_ns) / 1000000))
  echo "mtas: ready in ${ms} ms: exim=$HOST:$EXIM_SMTP_PORT,$EXIM_SMTPS_PORT,$EXIM_TLS12_PORT" \
       "opensmtpd=$HOST:$SMTPD_SMTP_PORT,$SMTPD_STARTTLS_PORT,$SMTPD_SMTPS_PORT env=$DIR/mtas.env"
}

cmd_stop() {
  [[ $(id -u) -eq 0 ]] || die "must run as root"
  [[ -d $DIR ]] || { log "nothing running ($DIR does not exist)"; return 0; }
  open_dir
  stop_mtas
  rm -f "$DIR/mtas.env"
}

cmd_status() {
  [[ -d $DIR ]] || { echo "mtas: not running ($DIR does not exist)"; return 1; }
  set_paths "$(cd "$DIR" && pwd -P)"
  local rc=0 pid port
  if pid=$(live_pid "$EXIM_PID_FILE"); then echo "exim: running (pid $pid)"
  else echo "exim: stopped"; rc=1; fi
  if pid=$(live_pid "$SMTPD_PID_FILE"); then echo "opensmtpd: running (pid $pid)"
  else echo "opensmtpd: stopped"; rc=1; fi
  for port in "${ALL_PORTS[@]}"; do
    if port_in_use "$HOST" "$port"; then echo "  $HOST:$port listening"
    else echo "  $HOST:$port closed"; rc=1; fi
  done
  return $rc
}

# A fresh namespace with the same mounts sees the daemon's spool and control socket.
cmd_exim() {
  open_dir
  set_namespace_command exim
  "${NS_CMD[@]}" "$EXIM_BIN" -C "$EXIM_DIR/exim.conf" "$@"
}

# smtpctl insists on running with the group opensmtpq, which its package would have made it
# setgid to.
cmd_smtpctl() {
  open_dir
  local group
  group=$(awk -F: '$1 == "opensmtpq" {print $3}' "$NS_ETC/group" 2>/dev/null)
  [[ -n $group ]] || die "OpenSMTPD was never started in $DIR"
  set_namespace_command opensmtpd
  "${NS_CMD[@]}" setpriv --egid="$group" --keep-groups "$SMTPD_PACKAGE/usr/sbin/smtpctl" "$@"
}

main() {
  [[ $# -ge 2 ]] || usage
  local cmd=$1
  DIR=$2
  shift 2
  [[ -n $DIR ]] || usage
  case $cmd in
    exim|smtpctl) ;;
    *) [[ $# -eq 0 ]] || usage ;;
  esac
  set_ports
  set_paths "$DIR"
  case $cmd in
    start)   cmd_start ;;
    stop)    cmd_stop ;;
    status)  cmd_status || exit 1 ;;   # (|| keeps the ERR trap quiet)
    exim)    cmd_exim "$@" ;;
    smtpctl) cmd_smtpctl "$@" ;;
    *)       usage ;;
  esac
}

main "$@"
