#!/usr/bin/env bash
# Real Postfix + Dovecot test mail stack on 127.0.0.1, with an unbound DNS server for the test
# zone canary.test, private to one directory.
#
#   mailstack.sh start  DIR   # (re)start; prints the ready state, writes DIR/stack.env
#   mailstack.sh stop   DIR   # stop both daemons; exit 0 if nothing was running
#   mailstack.sh status DIR   # exit 0 if both daemons are up
#   mailstack.sh release-held DIR [QUEUE_ID...]  # release held mail (all by default), deliver now
#   mailstack.sh flush  DIR   # deliver everything queued (postqueue -f)
#   mailstack.sh queue  DIR   # list the queue, one JSON object per message (postqueue -j)
#   mailstack.sh save   DIR USER [MAILBOX] <MESSAGE  # store directly (no Postfix, no Sieve)
#   mailstack.sh fault  DIR FAULT on|off [USER]  # switch a fault on or off (below)
#
# Everything lives under DIR (configs, queue, data, maildirs, certs, logs, pids);
# the system /etc/postfix and /etc/dovecot are never written. Runs as root,
# without systemd. Ports start at MAILSTACK_PORT_BASE (default 20000):
#   +25 SMTP (STARTTLS offered, no auth; also on [::1], for dual-stack targets)
#   +26 SMTP with an EXPIRED certificate
#   +421 SMTP that answers 421 4.7.0 past 2 connections in 10 s (Postfix anvil)
#   +587 submission (STARTTLS required, AUTH PLAIN/LOGIN)   +465 implicit TLS + AUTH
#   +143 IMAP (STARTTLS)   +993 IMAPS   +24 LMTP (Postfix -> Dovecot)
# and on 127.0.0.2, without the IDLE capability: +144 IMAP (STARTTLS)  +994 IMAPS.
#   +53 DNS (unbound, UDP and TCP on 127.0.0.1 and ::1) for the zone canary.test
#       (write_dns_config; docs/testing.md, "The stack's DNS server").
# Mail to @cyrus.test goes to +224, the LMTP port of Cyrus IMAP (tests/stack/cyrus.sh).
# Faults on delivery: a header X-Mailcanary-Test-Hold puts the message on hold
# in Postfix; X-Mailcanary-Test-Junk makes Sieve file it into Junk.
# Faults for the whole stack (`fault`, for scripts/soak.sh): postfix-down, dovecot-down,
# expired-cert (Postfix presents the expired certificate on every port), wrong-password (USER's
# password, default every user's, is not the one in DIR/secrets), hold-all (Postfix holds every
# message), junk-all (Sieve files every message into Junk). A fault is a file in DIR/faults that
# the configuration writers read; `start` clears them.
# See docs/testing.md.
set -Eeuo pipefail
# Say where an unexpected failure happened instead of exiting silently.
trap 'printf "mailstack: error: command failed (line %s): %s\n" "$LINENO" "$BASH_COMMAND" >&2' ERR

readonly DOMAIN=example.test
# Delivered to Cyrus IMAP over LMTP when tests/stack/cyrus.sh runs beside the stack (mail to it
# is deferred while Cyrus is not running).
readonly CYRUS_DOMAIN=cyrus.test
readonly SERVER_NAME=mail.example.test
readonly HOST=127.0.0.1
readonly HOST6=::1  # the plain SMTP port only, for dual-stack targets
# Dovecot applies a `local` filter by the server address a client connected
# to (2.3 has no per-listener settings), so the listeners without IDLE live on
# another loopback address; Linux routes all of 127/8 to lo.
readonly NOIDLE_HOST=127.0.0.2
readonly HOLD_HEADER=X-Mailcanary-Test-Hold
readonly JUNK_HEADER=X-Mailcanary-Test-Junk
readonly USERS=(probe other exchange)
# The exchange user's mailbox is laid out as Exchange Online lists one: no
# special-use flags (Dovecot's flagged, auto-created Junk is turned off for it
# through its userdb fields), and the folders named as Exchange names them,
# created at start. Its Sieve script files junk into "Junk Email".
readonly EXCHANGE_FOLDERS=("Junk Email" "Deleted Items" "Корзина")
readonly REQUIRED_PKGS=(postfix dovecot-core dovecot-imapd dovecot-lmtpd dovecot-sieve openssl
  unbound)
readonly FAULTS=(postfix-down dovecot-down expired-cert wrong-password hold-all junk-all)
readonly START_TIMEOUT=60
readonly STOP_TIMEOUT=10

PATH=/usr/sbin:/usr/bin:/sbin:/bin:$PATH
# shellcheck source=tests/stack/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

log() { printf 'mailstack: %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

usage() {
  echo "usage: $0 start|stop|status|flush|queue DIR   (env: MAILSTACK_PORT_BASE, default 20000)" >&2
  echo "       $0 release-held DIR [QUEUE_ID...]" >&2
  echo "       $0 save DIR USER [MAILBOX] <MESSAGE" >&2
  echo "       $0 fault DIR FAULT on|off [USER]   (FAULT: ${FAULTS[*]})" >&2
  exit 2
}

# ---------------------------------------------------------------- paths/ports

set_paths() {
  DIR=$1
  TLS=$DIR/tls
  SECRETS=$DIR/secrets
  PF_CONF=$DIR/postfix          # Postfix config_directory (main.cf, master.cf)
  PF_QUEUE=$DIR/spool           # queue_directory (also holds pid/master.pid)
  PF_DATA=$DIR/lib/postfix      # data_directory, must be owned by postfix
  DC_CONF=$DIR/dovecot          # dovecot.conf + users file
  DC_BASE=$DIR/run/dovecot      # Dovecot base_dir (sockets, master.pid)
  DC_STATE=$DIR/lib/dovecot     # Dovecot state_dir
  MAIL=$DIR/mail                # maildirs, owned by mail:mail
  LOGS=$DIR/log
  PF_PID_FILE=$PF_QUEUE/pid/master.pid
  DC_PID_FILE=$DC_BASE/master.pid
  FAULT_DIR=$DIR/faults
  DNS_CONF=$DIR/unbound         # unbound.conf
  DNS_PID_FILE=$DNS_CONF/unbound.pid
}

# 0 if the fault is switched on (cmd_fault).
fault_on() { [[ -e $FAULT_DIR/$1 ]]; }

set_ports() {
  local base
  base=$(port_base)
  PORT_BASE=$base
  SMTP_PORT=$((base + 25))
  SMTP_EXPIRED_PORT=$((base + 26))
  SMTP_THROTTLED_PORT=$((base + 421))  # anvil answers 421 4.7.0 past 2 connections
  SUBMISSION_PORT=$((base + 587))
  SMTPS_PORT=$((base + 465))
  IMAP_PORT=$((base + 143))
  IMAPS_PORT=$((base + 993))
  LMTP_PORT=$((base + 24))
  CYRUS_LMTP_PORT=$((base + 224))       # tests/stack/cyrus.sh listens there
  IMAP_NOIDLE_PORT=$((base + 144))     # on $NOIDLE_HOST
  IMAPS_NOIDLE_PORT=$((base + 994))    # on $NOIDLE_HOST
  DNS_PORT=$((base + 53))
}

# ---------------------------------------------------------------- preconditions

check_prereqs() {
  [[ $(id -u) -eq 0 ]] || die "must run as root (Postfix and Dovecot drop privileges themselves)"
  local pkg missing=()
  for pkg in "${REQUIRED_PKGS[@]}"; do
    [[ $(dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null || true) == "install ok installed" ]] ||
      missing+=("$pkg")
  done
  ((${#missing[@]} == 0)) ||
    die "missing package(s): ${missing[*]} -- run: bash scripts/install-deps.sh"
  local u
  for u in mail postfix dovecot; do
    id "$u" >/dev/null 2>&1 || die "user $u missing (are postfix and dovecot-core configured?)"
  done
}

# The daemons' unprivileged processes (mail, dovecot, postfix) must reach files
# under DIR, so every parent directory must be searchable by them.
check_dir_traversable() {
  local u
  for u in mail dovecot postfix; do
    runuser -u "$u" -- test -x "$DIR" ||
      die "$DIR is not reachable by user '$u' (a parent directory lacks o+x, e.g. /root); use a directory under /tmp"
  done
}

# Something already listening (another stack, a system daemon) would make the
# start fail with a confusing log; say which port it is.
check_ports_free() {
  wait_ports_free 30 "$SMTP_PORT" "$SMTP_EXPIRED_PORT" "$SMTP_THROTTLED_PORT" "$SUBMISSION_PORT" \
    "$SMTPS_PORT" "$IMAP_PORT" "$IMAPS_PORT" "$LMTP_PORT" "$IMAP_NOIDLE_PORT" "$IMAPS_NOIDLE_PORT" \
    "$DNS_PORT"
}

# ---------------------------------------------------------------- TLS material

# Minimal `openssl ca` setup: needed because only `openssl ca` can sign with
# explicit past -startdate/-enddate (OpenSSL 3.0 x509 has no -not_after).
write_ca_config() {
  mkdir -p "$TLS/ca-db/newcerts"
  touch "$TLS/ca-db/index.txt"
  [[ -s $TLS/ca-db/serial ]] || openssl rand -hex 8 >"$TLS/ca-db/serial"
  cat >"$TLS/ca.cnf" <<EOF
[ ca ]
default_ca = test_ca
[ test_ca ]
dir             = $TLS/ca-db
database        = \$dir/index.txt
new_certs_dir   = \$dir/newcerts
serial          = \$dir/serial
certificate     = $TLS/ca.pem
private_key     = $TLS/ca.key
default_md      = sha256
default_days    = 825
policy          = policy_any
unique_subject  = no
copy_extensions = none
[ policy_any ]
commonName = supplied
[ server_ext ]
basicConstraints       = critical, CA:FALSE
keyUsage               = critical, digitalSignature, keyEncipherment
extendedKeyUsage       = serverAuth
subjectAltName         = DNS:$SERVER_NAME, DNS:localhost, IP:127.0.0.1, IP:$NOIDLE_HOST, IP:::1
subjectKeyIdentifier   = hash
authorityKeyIdentifier = keyid
EOF
}

# sign_server NAME [openssl-ca date options...]
sign_server() {
  local name=$1; shift
  openssl req -new -newkey rsa:2048 -nodes -keyout "$TLS/$name.key" \
    -subj "/CN=$SERVER_NAME" -out "$TLS/$name.csr" 2>/dev/null
  openssl ca -batch -notext -config "$TLS/ca.cnf" -extensions server_ext \
    -in "$TLS/$name.csr" -out "$TLS/$name.pem" "$@" 2>"$TLS/$name.err" ||
    { cat "$TLS/$name.err" >&2; die "signing $name certificate failed"; }
  rm -f "$TLS/$name.csr" "$TLS/$name.err"
  chmod 0600 "$TLS/$name.key"
}

ensure_tls() {
  mkdir -p "$TLS"
  chmod 0755 "$TLS"
  write_ca_config
  if [[ ! -s $TLS/ca.pem || ! -s $TLS/ca.key ]]; then
    log "creating private CA in $TLS"
    rm -f "$TLS/server.pem" "$TLS/expired.pem"   # old leaves belong to an old CA
    openssl req -x509 -new -newkey rsa:2048 -nodes -sha256 -days 3650 \
      -keyout "$TLS/ca.key" -out "$TLS/ca.pem" -subj "/CN=mailcanary test CA" \
      -addext "basicConstraints=critical,CA:TRUE" \
      -addext "keyUsage=critical,keyCertSign,cRLSign" 2>/dev/null
    chmod 0600 "$TLS/ca.key"
  fi
  # Reissue a leaf when missing, not from this CA, or (for server.pem) expired
  # or lacking the no-IDLE address (certificates from before it was added).
  if [[ ! -s $TLS/server.pem || ! -s $TLS/server.key ]] ||
     ! openssl verify -CAfile "$TLS/ca.pem" -verify_ip "$NOIDLE_HOST" "$TLS/server.pem" >/dev/null 2>&1; then
    sign_server server -days 825
  fi
  if [[ ! -s $TLS/expired.pem || ! -s $TLS/expired.key ]] ||
     ! openssl verify -no_check_time -CAfile "$TLS/ca.pem" "$TLS/expired.pem" >/dev/null 2>&1; then
    sign_server expired -startdate 20200101000000Z -enddate 20200201000000Z
  fi
}

# ---------------------------------------------------------------- users

ensure_password() {
  mkdir -p "$SECRETS"
  chmod 0700 "$SECRETS"
  if [[ ! -s $SECRETS/probe.password ]]; then
    (umask 077; openssl rand -hex 16 | tr -d '\n' >"$SECRETS/probe.password")
  fi
  chmod 0600 "$SECRETS/probe.password"
  PASSWORD=$(<"$SECRETS/probe.password")
}

# Dovecot reads the file again when it changes, so it is replaced whole (a login must never see
# it half written). The wrong-password fault gives the users its file names (all when it names
# none) the hash of another password.
write_users() {
  local hash wrong_hash u tmp=$DC_CONF/users.tmp
  hash=$(openssl passwd -6 -stdin <<<"$PASSWORD")
  wrong_hash=$(openssl passwd -6 -stdin <<<"not-$PASSWORD")
  local -a wrong=()
  if fault_on wrong-password; then
    mapfile -t wrong <"$FAULT_DIR/wrong-password"
    ((${#wrong[@]})) || wrong=("${USERS[@]}")
  fi
  mkdir -p "$DC_CONF"
  : >"$tmp"
  local extra user_hash
  for u in "${USERS[@]}"; do
    # user:password:uid:gid:gecos:home:shell:extra  (uid/gid/home from default_fields);
    # a userdb_ field of the passdb reaches the userdb lookup too (LMTP, doveadm).
    extra=""
    [[ $u == exchange ]] && extra="userdb_namespace/inbox/mailbox/Junk/auto=no"
    user_hash=$hash
    [[ " ${wrong[*]} " == *" $u "* ]] && user_hash=$wrong_hash
    printf '%s@%s:{SHA512-CRYPT}%s::::::%s\n' "$u" "$DOMAIN" "$user_hash" "$extra" >>"$tmp"
  done
  chown root:dovecot "$tmp"
  chmod 0640 "$tmp"
  # Dovecot notices the change by the mtime, in whole seconds: never the old one.
  local old_mtime
  old_mtime=$(stat -c %Y "$DC_CONF/users" 2>/dev/null || echo 0)
  ((old_mtime < $(date +%s))) || touch -d "@$((old_mtime + 1))" "$tmp"
  mv "$tmp" "$DC_CONF/users"
}

# ---------------------------------------------------------------- Postfix

write_postfix_config() {
  local server_cert=server
  if fault_on expired-cert; then server_cert=expired; fi
  mkdir -p "$PF_CONF" "$PF_QUEUE" "$PF_DATA" "$LOGS"
  chown postfix:postfix "$PF_DATA"   # else "master.lock: Permission denied"
  local u
  : >"$PF_CONF/vmailbox"
  for u in "${USERS[@]}"; do
    printf '%s@%s OK\n' "$u" "$DOMAIN" >>"$PF_CONF/vmailbox"
  done
  printf 'probe@%s OK\n' "$CYRUS_DOMAIN" >>"$PF_CONF/vmailbox"
  printf '%s lmtp:inet:%s:%s\n' "$CYRUS_DOMAIN" "$HOST" "$CYRUS_LMTP_PORT" >"$PF_CONF/transport"
  # bounce@: Postfix accepts it (250; an error: transport would have smtpd refuse it at RCPT),
  # Dovecot's LMTP has no such user and refuses it (550 5.1.1), so Postfix's bounce daemon sends
  # a real DSN (RFC 3464) to the envelope sender: the roundtrip's bounce test.
  printf 'bounce@%s OK\n' "$DOMAIN" >>"$PF_CONF/vmailbox"

  cat >"$PF_CONF/main.cf" <<EOF
# Generated by tests/stack/mailstack.sh -- private test instance, do not edit.
compatibility_level = 3.6
queue_directory = $PF_QUEUE
data_directory = $PF_DATA
mail_owner = postfix
setgid_group = postdrop

# Logging without syslog: postlog service in master.cf writes this file.
maillog_file = $LOGS/postfix.log
maillog_file_prefixes = $LOGS

myhostname = $SERVER_NAME
mydomain = $DOMAIN
myorigin = \$myhostname
inet_interfaces = loopback-only
# IPv6 only for the plain SMTP port on [::1] (master.cf): dual-stack targets (ip = "both") see
# a server on both families; everything else stays on 127.0.0.1.
inet_protocols = ipv4, ipv6
smtpd_banner = \$myhostname ESMTP mailcanary test stack
biff = no
append_dot_mydomain = no
alias_maps =
alias_database =

# Nothing may leave the machine: no local domains, no trusted networks, no
# relay host, and every non-virtual transport is an error.
mydestination =
mynetworks =
relay_domains =
relayhost =
local_transport = error:local delivery disabled in test stack
default_transport = error:outbound mail disabled in test stack
relay_transport = error:outbound mail disabled in test stack

# Virtual domains delivered to Dovecot over LMTP, and $CYRUS_DOMAIN to Cyrus (the transport
# map); unknown users get 550.
virtual_mailbox_domains = $DOMAIN, $CYRUS_DOMAIN
virtual_mailbox_maps = texthash:$PF_CONF/vmailbox
virtual_transport = lmtp:inet:$HOST:$LMTP_PORT
transport_maps = texthash:$PF_CONF/transport

# Anyone may send TO @$DOMAIN without auth; relaying elsewhere needs AUTH
# (and then still ends in the error transport above).
smtpd_relay_restrictions = permit_sasl_authenticated, reject_unauth_destination
# Two recipients that are always refused, for the accept probe's failure cases:
# tempfail@ gets a 4xx, refused@ a 5xx (see recipient_access).
smtpd_recipient_restrictions = check_recipient_access texthash:$PF_CONF/recipient_access
# A message with the hold header is accepted (250) but parked in the hold
# queue until released (mailstack.sh release-held DIR).
header_checks = regexp:$PF_CONF/header_checks
smtpd_client_event_limit_exceptions = 127.0.0.0/8
# The throttled port's connection rate limit counts per 10 s, not per minute: a throttling
# test sees the server let the agent in again within seconds.
anvil_rate_time_unit = 10s
smtpd_error_sleep_time = 0
in_flow_delay = 0

# TLS: offered on every port; submission ports override in master.cf.
smtpd_tls_security_level = may
smtpd_tls_cert_file = $TLS/$server_cert.pem
smtpd_tls_key_file = $TLS/$server_cert.key
smtpd_tls_loglevel = 1
smtpd_tls_received_header = yes

# SASL through Dovecot's auth socket (queue_directory-relative path).
smtpd_sasl_type = dovecot
smtpd_sasl_path = private/auth
smtpd_sasl_auth_enable = no
smtpd_tls_auth_only = yes
broken_sasl_auth_clients = no
EOF

  # chroot column is "n" everywhere: no chroot setup needed.
  cat >"$PF_CONF/master.cf" <<EOF
# Generated by tests/stack/mailstack.sh. Every inet service binds explicitly.
# service                  type  private unpriv chroot wakeup maxproc command
$HOST:$SMTP_PORT           inet  n       -      n      -      -       smtpd
[$HOST6]:$SMTP_PORT        inet  n       -      n      -      -       smtpd
$HOST:$SMTP_EXPIRED_PORT   inet  n       -      n      -      -       smtpd
  -o syslog_name=postfix/expired
  -o smtpd_tls_cert_file=$TLS/expired.pem
  -o smtpd_tls_key_file=$TLS/expired.key
$HOST:$SMTP_THROTTLED_PORT inet  n       -      n      -      -       smtpd
  -o syslog_name=postfix/throttled
  -o smtpd_client_connection_rate_limit=2
  -o smtpd_client_event_limit_exceptions=
$HOST:$SUBMISSION_PORT     inet  n       -      n      -      -       smtpd
  -o syslog_name=postfix/submission
  -o smtpd_tls_security_level=encrypt
  -o smtpd_sasl_auth_enable=yes
  -o { smtpd_recipient_restrictions = permit_sasl_authenticated, reject }
$HOST:$SMTPS_PORT          inet  n       -      n      -      -       smtpd
  -o syslog_name=postfix/smtps
  -o smtpd_tls_wrappermode=yes
  -o smtpd_sasl_auth_enable=yes
  -o { smtpd_recipient_restrictions = permit_sasl_authenticated, reject }
pickup     unix  n       -       n       60      1       pickup
cleanup    unix  n       -       n       -       0       cleanup
qmgr       unix  n       -       n       300     1       qmgr
tlsmgr     unix  -       -       n       1000?   1       tlsmgr
rewrite    unix  -       -       n       -       -       trivial-rewrite
bounce     unix  -       -       n       -       0       bounce
defer      unix  -       -       n       -       0       bounce
trace      unix  -       -       n       -       0       bounce
verify     unix  -       -       n       -       1       verify
flush      unix  n       -       n       1000?   0       flush
proxymap   unix  -       -       n       -       -       proxymap
proxywrite unix  -       -       n       -       1       proxymap
smtp       unix  -       -       n       -       -       smtp
relay      unix  -       -       n       -       -       smtp
showq      unix  n       -       n       -       -       showq
error      unix  -       -       n       -       -       error
retry      unix  -       -       n       -       -       error
discard    unix  -       -       n       -       -       discard
lmtp       unix  -       -       n       -       -       lmtp
anvil      unix  -       -       n       -       1       anvil
scache     unix  -       -       n       -       1       scache
postlog    unix-dgram n  -       n       -       1       postlogd
EOF
  # Postfix re-reads config files younger than 1 s every 300 ms (about +2 s
  # per postfix command); backdating the mtime avoids that.
  cat >"$PF_CONF/recipient_access" <<EOF
tempfail@$DOMAIN 450 4.7.1 Try again later (mailcanary test stack)
refused@$DOMAIN 554 5.7.1 Refused by policy (mailcanary test stack)
EOF
  # regexp tables match case-insensitively; any value of the header holds.
  cat >"$PF_CONF/header_checks" <<EOF
/^$HOLD_HEADER:/ HOLD held by mailcanary test stack ($HOLD_HEADER)
EOF
  # Every message has a From header, which the line above never matches.
  if fault_on hold-all; then
    echo "/^From:/ HOLD held by mailcanary test stack (fault hold-all)" >>"$PF_CONF/header_checks"
  fi
  touch -d '-2 seconds' "$PF_CONF/main.cf" "$PF_CONF/master.cf" "$PF_CONF/vmailbox" \
    "$PF_CONF/transport" "$PF_CONF/recipient_access" "$PF_CONF/header_checks"
}

start_postfix() {
  # `postfix start` runs the same checks as `postfix check` first. When it
  # fails it prints little (logging goes to a file that postlogd writes), so
  # collect `postfix check` and `postsuper` output, which show the fatal error.
  if ! postfix -c "$PF_CONF" start </dev/null >>"$LOGS/postfix-start.log" 2>&1; then
    postfix -c "$PF_CONF" check >>"$LOGS/postfix-start.log" 2>&1 || true
    postsuper -c "$PF_CONF" >>"$LOGS/postfix-start.log" 2>&1 || true
    fail_with_logs "postfix start failed"
  fi
}

# ---------------------------------------------------------------- Dovecot

# The post-login CAPABILITY that this Dovecot (2.3.19) announces on +993,
# copied without IDLE (an explicit list gets nothing appended; checked).
readonly NOIDLE_CAPABILITY="IMAP4rev1 SASL-IR LOGIN-REFERRALS ID ENABLE SORT SORT=DISPLAY \
THREAD=REFERENCES THREAD=REFS THREAD=ORDEREDSUBJECT MULTIAPPEND URL-PARTIAL CATENATE UNSELECT \
CHILDREN NAMESPACE UIDPLUS LIST-EXTENDED I18NLEVEL=1 CONDSTORE QRESYNC ESEARCH ESORT SEARCHRES \
WITHIN CONTEXT=SEARCH LIST-STATUS BINARY MOVE SNIPPET=FUZZY PREVIEW=FUZZY PREVIEW STATUS=SIZE \
SAVEDATE LITERAL+ NOTIFY SPECIAL-USE"

write_dovecot_config() {
  mkdir -p "$DC_CONF" "$DC_BASE" "$DC_STATE" "$MAIL" "$LOGS"
  chown mail:mail "$MAIL"
  chmod 0700 "$MAIL"
  local dh=""
  [[ -r /usr/share/dovecot/dh.pem ]] && dh="ssl_dh = </usr/share/dovecot/dh.pem"

  cat >"$DC_CONF/dovecot.conf" <<EOF
# Generated by tests/stack/mailstack.sh -- private test instance, do not edit.
instance_name = mailcanary-test
hostname = $SERVER_NAME
base_dir = $DC_BASE
state_dir = $DC_STATE
protocols = imap lmtp
listen = $HOST
log_path = $LOGS/dovecot.log
info_log_path = $LOGS/dovecot.log
auth_verbose = yes

ssl = yes
ssl_cert = <$TLS/server.pem
ssl_key = <$TLS/server.key
$dh

auth_mechanisms = plain login
auth_failure_delay = 0
passdb {
  driver = passwd-file
  args = scheme=SHA512-CRYPT username_format=%u $DC_CONF/users
}
userdb {
  driver = passwd-file
  args = username_format=%u $DC_CONF/users
  default_fields = uid=mail gid=mail home=$MAIL/%d/%n
}

first_valid_uid = 8
mail_uid = mail
mail_gid = mail
mail_location = maildir:~/Maildir
namespace inbox {
  inbox = yes
  mailbox Junk {
    special_use = \\Junk
    auto = create
  }
  mailbox Sent {
    special_use = \\Sent
    auto = create
  }
}

service imap-login {
  inet_listener imap {
    address = $HOST
    port = $IMAP_PORT
  }
  inet_listener imaps {
    address = $HOST
    port = $IMAPS_PORT
    ssl = yes
  }
  inet_listener imap_noidle {
    address = $NOIDLE_HOST
    port = $IMAP_NOIDLE_PORT
  }
  inet_listener imaps_noidle {
    address = $NOIDLE_HOST
    port = $IMAPS_NOIDLE_PORT
    ssl = yes
  }
}
# Connections to $NOIDLE_HOST: Dovecot's own capability list minus IDLE, so
# clients take their NOOP-polling path. An explicit list replaces the default
# both before LOGIN (imap-login) and after it (imap); STARTTLS, LOGINDISABLED
# and AUTH= are still added by imap-login. IDLE itself still works if sent.
# Note: a client there connects from 127.0.0.1, another IP than the server's,
# so Dovecot does not treat it as secure: plain +144 announces LOGINDISABLED
# until STARTTLS.
local $NOIDLE_HOST {
  protocol imap {
    imap_capability = $NOIDLE_CAPABILITY
  }
}
service lmtp {
  inet_listener lmtp {
    address = $HOST
    port = $LMTP_PORT
  }
}
# No per-IP auth penalty (2, 4, 8, 15 s after repeated failures from one IP,
# which is every test client here): mode 0 = no socket, and the auth process
# then skips the penalty (it only needs the socket file to be absent).
service anvil {
  unix_listener anvil-auth-penalty {
    mode = 0
  }
}
# Postfix SASL: the socket lives in Postfix's private/ (smtpd_sasl_path).
service auth {
  unix_listener $PF_QUEUE/private/auth {
    mode = 0660
    user = postfix
    group = postfix
  }
}

# Sieve on delivery (e.g. a ~/.dovecot.sieve filing marked mail into Junk).
protocol lmtp {
  mail_plugins = \$mail_plugins sieve
  postmaster_address = postmaster@$DOMAIN
}
plugin {
  sieve = file:~/sieve;active=~/.dovecot.sieve
}
EOF
}

# Each user's active Sieve script (plugin setting sieve = file:~/sieve;
# active=~/.dovecot.sieve): a message carrying the junk header, any value, is
# filed into Junk. Compiled here, so that a broken script fails the start
# instead of every delivery; rewritten and recompiled only when it changed.
write_sieve_scripts() {
  local u home script junk bounces condition="exists \"$JUNK_HEADER\""
  if fault_on junk-all; then condition=true; fi
  for u in "${USERS[@]}"; do
    junk=Junk
    [[ $u == exchange ]] && junk="Junk Email"
    # other@ files bounces (delivery status notifications) into a folder of their own, as an
    # operator keeping them apart would: the roundtrip's bounce_mailbox test reads them there.
    bounces=
    [[ $u == other ]] && bounces='if header :contains "Content-Type" "multipart/report" {
  fileinto :create "Bounces";
  stop;
}'
    script=$(cat <<EOF
# Generated by tests/stack/mailstack.sh -- private test instance, do not edit.
require ["fileinto", "mailbox"];
if $condition {
  fileinto :create "$junk";
  stop;
}
$bounces
EOF
)
    home=$MAIL/$DOMAIN/$u
    # Delivery keeps the binary next to the link (~/.dovecot.svbin), not
    # next to the script, so compile through the link.
    if [[ -f $home/sieve/mailcanary.sieve && $(<"$home/sieve/mailcanary.sieve") == "$script" &&
          $(readlink "$home/.dovecot.sieve" || true) == sieve/mailcanary.sieve &&
          $home/.dovecot.svbin -nt $home/sieve/mailcanary.sieve ]]; then
      continue
    fi
    mkdir -p "$home/sieve"
    printf '%s\n' "$script" >"$home/sieve/mailcanary.sieve"
    ln -sfn sieve/mailcanary.sieve "$home/.dovecot.sieve"
    rm -f "$home/.dovecot.svbin"
    sievec -c "$DC_CONF/dovecot.conf" "$home/.dovecot.sieve" \
      </dev/null >>"$LOGS/dovecot-start.log" 2>&1 ||
      fail_with_logs "compiling $home/sieve/mailcanary.sieve failed"
    # Dovecot creates the rest of the home (Maildir) as mail on first use.
    chown -h mail:mail "$MAIL/$DOMAIN" "$home" "$home/sieve" "$home/sieve/mailcanary.sieve" \
      "$home/.dovecot.sieve" "$home/.dovecot.svbin"
  done
}

start_dovecot() {
  [[ -d $PF_QUEUE/private ]] || fail_with_logs "Postfix did not create $PF_QUEUE/private"
  # base_dir only holds runtime sockets; a stale anvil-auth-penalty socket
  # from an older config would make the auth process retry it for 5 s.
  rm -rf "$DC_BASE"
  mkdir -p "$DC_BASE"
  # Dovecot keeps the caller's stdio open: redirect it, or a $(...) or pipe
  # around this script never ends.
  dovecot -c "$DC_CONF/dovecot.conf" </dev/null >>"$LOGS/dovecot-start.log" 2>&1 ||
    fail_with_logs "dovecot failed to start"
}

# The exchange user's folders, before any client lists them.
create_exchange_folders() {
  local folder existing user=exchange@$DOMAIN
  existing=$(doveadm -c "$DC_CONF/dovecot.conf" mailbox list -u "$user" </dev/null) ||
    fail_with_logs "listing the folders of $user failed"
  for folder in "${EXCHANGE_FOLDERS[@]}"; do
    grep -qxF "$folder" <<<"$existing" && continue
    doveadm -c "$DC_CONF/dovecot.conf" mailbox create -u "$user" "$folder" \
      </dev/null >>"$LOGS/dovecot-start.log" 2>&1 ||
      fail_with_logs "creating $folder for $user failed"
  done
}

# ---------------------------------------------------------------- DNS

# The test zone. Local data answers with its TTL; servfail.canary.test is delegated to a stub
# server that unbound may not query (do-not-query-address), so that it answers SERVFAIL at once,
# for any type.
write_dns_config() {
  mkdir -p "$DNS_CONF"
  local interfaces="  interface: 127.0.0.1@$DNS_PORT"
  [[ -e /proc/net/if_inet6 ]] && interfaces+=$'\n'"  interface: ::1@$DNS_PORT"
  cat >"$DNS_CONF/unbound.conf" <<EOF
server:
$interfaces
  port: $DNS_PORT
  do-daemonize: no
  username: ""
  chroot: ""
  directory: "$DNS_CONF"
  pidfile: "$DNS_PID_FILE"
  use-syslog: no
  logfile: "$LOGS/unbound.log"
  verbosity: 1
  num-threads: 1
  module-config: "iterator"
  access-control: 127.0.0.0/8 allow
  access-control: ::1/128 allow
  do-not-query-localhost: no
  do-not-query-address: 127.0.0.53
  local-zone: "canary.test." static
  local-data: "mail.canary.test. 300 IN A 127.0.0.1"
  local-data: "mail.canary.test. 300 IN AAAA ::1"
  local-data: "v4only.canary.test. 300 IN A 127.0.0.1"
  local-data: "v6only.canary.test. 300 IN AAAA ::1"
  local-data: "v4broken.canary.test. 300 IN A 127.0.0.2"
  local-data: "v4broken.canary.test. 300 IN AAAA ::1"
  local-data: "short.canary.test. 1 IN A 127.0.0.1"
  local-data: "canary.test. 300 IN MX 10 mail.canary.test."
  local-data: "canary.test. 300 IN MX 20 v4only.canary.test."
  local-data: "tie.canary.test. 300 IN MX 10 mail.canary.test."
  local-data: "tie.canary.test. 300 IN MX 10 v4only.canary.test."
  local-data: "nomx.canary.test. 300 IN A 127.0.0.1"
  local-data: "nullmx.canary.test. 300 IN MX 0 ."
  local-zone: "servfail.canary.test." transparent
stub-zone:
  name: "servfail.canary.test."
  stub-addr: 127.0.0.53@53
remote-control:
  control-enable: no
EOF
  unbound-checkconf "$DNS_CONF/unbound.conf" >>"$LOGS/unbound-start.log" 2>&1 ||
    fail_with_logs "unbound-checkconf rejects $DNS_CONF/unbound.conf"
}

# In the foreground (no systemd, no daemonising), detached from the script's stdio; its own pid
# file is written only once it serves, so the start's is kept beside it.
start_dns() {
  setsid unbound -d -c "$DNS_CONF/unbound.conf" </dev/null >>"$LOGS/unbound-start.log" 2>&1 &
  echo $! >"$DNS_PID_FILE.start"
}

dns_alive() {
  live_pid "$DNS_PID_FILE.start" >/dev/null || fail_with_logs "unbound died during start"
}

# ---------------------------------------------------------------- stopping

stop_stack() { stop_daemons postfix dovecot dns; }

# stop_daemons postfix|dovecot|dns...: stop those of them that run, together, and wait until they
# are gone.
stop_daemons() {
  local pf="" dc="" dns="" pids=()
  [[ " $* " == *" postfix "* ]] && pf=$(live_pid "$PF_PID_FILE" || true)
  [[ " $* " == *" dovecot "* ]] && dc=$(live_pid "$DC_PID_FILE" || true)
  [[ " $* " == *" dns "* ]] && dns=$(live_pid "$DNS_PID_FILE.start" || true)
  if [[ -z $pf && -z $dc && -z $dns ]]; then
    log "nothing running in $DIR"
    return 0
  fi
  if [[ -n $dns ]]; then kill -TERM "$dns" 2>/dev/null || true; fi
  local pid_list
  pid_list=$(with_children "$pf" "$dc" "$dns")
  mapfile -t pids <<<"$pid_list"

  if [[ -n $pf ]]; then
    postfix -c "$PF_CONF" stop </dev/null >>"$LOGS/postfix-start.log" 2>&1 || kill "$pf" 2>/dev/null || true
  fi
  # SIGTERM is what `dovecot stop` sends; it then polls with kill(pid, 0),
  # which a late-reaped zombie passes, so it would wait seconds for nothing.
  # Its children get one too, but log, which records their going, only once
  # the master is gone: told by the master alone, an imap process in IDLE, an
  # lmtp one holding Postfix's cached connection or auth held by Postfix's
  # smtpd outlive it by seconds, while the listeners accept and never answer.
  if [[ -n $dc ]]; then
    local dc_children
    dc_children=$(ps -o pid= --ppid "$dc" || true)
    # shellcheck disable=SC2046  # one word per pid
    kill -TERM "$dc" $(ps -o pid=,comm= --ppid "$dc" | awk '$2 != "log" {print $1}') \
      2>/dev/null || true
    wait_gone 3 "$dc" || true
    # shellcheck disable=SC2086
    kill -TERM $dc_children 2>/dev/null || true
  fi
  wait_gone_or_kill $((STOP_TIMEOUT - 2)) "${pids[@]}"
  log "stopped (postfix ${pf:-none}, dovecot ${dc:-none}, unbound ${dns:-none})"
}

# ---------------------------------------------------------------- readiness

# port_ready NAME HOST PORT: 0 once the listener greets as it should.
port_ready() {
  local name=$1 host=$2 port=$3 banner
  case $name in
    smtp|smtp6|expired|submission|lmtp) banner=$(banner_plain "$host" "$port" QUIT) || return 1 ;;
    imap|imap_noidle)             banner=$(banner_plain "$host" "$port" "a LOGOUT") || return 1 ;;
    smtps)                        banner=$(banner_tls "$host" "$port" QUIT "$SERVER_NAME" "$TLS/ca.pem") ;;
    imaps|imaps_noidle)           banner=$(banner_tls "$host" "$port" "a LOGOUT" "$SERVER_NAME" "$TLS/ca.pem") ;;
    dns)                          port_in_use "$host" "$port"; return ;;  # unbound serves TCP too
  esac
  case $name in
    imap*) [[ $banner == "* OK"* ]] || return 1 ;;
    *)     [[ $banner == "220 "* ]] || return 1 ;;
  esac
  # The banner's CAPABILITY shows whether the `local` filter took effect.
  if [[ $name == *_noidle && " ${banner//]/ } " == *" IDLE "* ]]; then
    fail_with_logs "$name on $host:$port still announces IDLE: $banner"
  fi
  return 0
}

postfix_alive() {
  live_pid "$PF_PID_FILE" >/dev/null || fail_with_logs "postfix master died during start"
}
dovecot_alive() {
  live_pid "$DC_PID_FILE" >/dev/null || fail_with_logs "dovecot died during start"
}
daemons_alive() { postfix_alive; dovecot_alive; dns_alive; }

postfix_listeners() {
  echo "smtp=$HOST:$SMTP_PORT" "smtp6=$HOST6:$SMTP_PORT" "expired=$HOST:$SMTP_EXPIRED_PORT" \
    "submission=$HOST:$SUBMISSION_PORT" "smtps=$HOST:$SMTPS_PORT"
}
dovecot_listeners() {
  echo "imap=$HOST:$IMAP_PORT" "imaps=$HOST:$IMAPS_PORT" "lmtp=$HOST:$LMTP_PORT" \
    "imap_noidle=$NOIDLE_HOST:$IMAP_NOIDLE_PORT" "imaps_noidle=$NOIDLE_HOST:$IMAPS_NOIDLE_PORT"
}

wait_ready() {
  # shellcheck disable=SC2046  # one word per listener
  wait_listeners "$START_TIMEOUT" port_ready daemons_alive $(postfix_listeners) $(dovecot_listeners) \
    "dns=$HOST:$DNS_PORT"
}

fail_with_logs() {
  log "error: $*"
  show_log_tails "$LOGS"/{postfix-start,postfix,dovecot-start,dovecot,unbound-start,unbound}.log
  exit 1
}

# ---------------------------------------------------------------- stack.env

write_env() {
  local tmp=$DIR/stack.env.tmp
  cat >"$tmp" <<EOF
MAILSTACK_HOST=$HOST
MAILSTACK_HOST6=$HOST6
MAILSTACK_PORT_BASE=$PORT_BASE
MAILSTACK_SMTP_PORT=$SMTP_PORT
MAILSTACK_SUBMISSION_PORT=$SUBMISSION_PORT
MAILSTACK_SMTPS_PORT=$SMTPS_PORT
MAILSTACK_SMTP_EXPIRED_PORT=$SMTP_EXPIRED_PORT
MAILSTACK_SMTP_THROTTLED_PORT=$SMTP_THROTTLED_PORT
MAILSTACK_IMAP_PORT=$IMAP_PORT
MAILSTACK_IMAPS_PORT=$IMAPS_PORT
MAILSTACK_LMTP_PORT=$LMTP_PORT
MAILSTACK_DNS_PORT=$DNS_PORT
MAILSTACK_CA_FILE=$TLS/ca.pem
MAILSTACK_TLS_SERVER_NAME=$SERVER_NAME
MAILSTACK_DOMAIN=$DOMAIN
MAILSTACK_USER=probe@$DOMAIN
MAILSTACK_EXCHANGE_USER=exchange@$DOMAIN
MAILSTACK_PASSWORD_FILE=$SECRETS/probe.password
MAILSTACK_TEMPFAIL_RCPT=tempfail@$DOMAIN
MAILSTACK_REFUSED_RCPT=refused@$DOMAIN
MAILSTACK_BOUNCE_RCPT=bounce@$DOMAIN
MAILSTACK_IMAP_NOIDLE_HOST=$NOIDLE_HOST
MAILSTACK_IMAP_NOIDLE_PORT=$IMAP_NOIDLE_PORT
MAILSTACK_IMAPS_NOIDLE_HOST=$NOIDLE_HOST
MAILSTACK_IMAPS_NOIDLE_PORT=$IMAPS_NOIDLE_PORT
MAILSTACK_HOLD_HEADER=$HOLD_HEADER
MAILSTACK_JUNK_HEADER=$JUNK_HEADER
MAILSTACK_POSTFIX_CONFIG_DIR=$PF_CONF
MAILSTACK_QUEUE_DIR=$PF_QUEUE
MAILSTACK_DOVECOT_CONFIG=$DC_CONF/dovecot.conf
MAILSTACK_MAIL_DIR=$MAIL
MAILSTACK_CYRUS_DOMAIN=$CYRUS_DOMAIN
MAILSTACK_CYRUS_LMTP_PORT=$CYRUS_LMTP_PORT
EOF
  mv "$tmp" "$DIR/stack.env"
}

# ---------------------------------------------------------------- commands

cmd_start() {
  local started_ns
  started_ns=$(date +%s%N)
  check_prereqs
  mkdir -p "$DIR"
  DIR=$(cd "$DIR" && pwd -P)   # absolute: configs must not depend on cwd
  # The path goes unquoted into main.cf, dovecot.conf and stack.env.
  [[ $DIR =~ ^[A-Za-z0-9._/+-]+$ ]] || die "DIR '$DIR' may only contain letters, digits and ._/+-"
  set_paths "$DIR"
  chmod 0755 "$DIR"
  check_dir_traversable
  # Idempotent: a running stack is stopped and started with fresh config.
  if live_pid "$PF_PID_FILE" >/dev/null || live_pid "$DC_PID_FILE" >/dev/null ||
    live_pid "$DNS_PID_FILE.start" >/dev/null; then
    log "already running, restarting"
    stop_stack
  fi
  rm -f "$DIR/stack.env"
  rm -rf "$FAULT_DIR"
  check_ports_free

  ensure_tls
  ensure_password
  write_users
  write_postfix_config
  write_dovecot_config
  write_sieve_scripts
  write_dns_config
  start_postfix
  start_dovecot
  start_dns
  wait_ready
  create_exchange_folders
  write_env

  local ms=$((($(date +%s%N) - started_ns) / 1000000))
  echo "mailstack: ready in ${ms} ms: smtp=$HOST:$SMTP_PORT submission=$SUBMISSION_PORT smtps=$SMTPS_PORT" \
       "expired=$SMTP_EXPIRED_PORT imap=$IMAP_PORT imaps=$IMAPS_PORT lmtp=$LMTP_PORT" \
       "noidle=$NOIDLE_HOST:$IMAP_NOIDLE_PORT,$IMAPS_NOIDLE_PORT dns=$DNS_PORT env=$DIR/stack.env"
}

cmd_stop() {
  [[ $(id -u) -eq 0 ]] || die "must run as root"
  [[ -d $DIR ]] || { log "nothing running ($DIR does not exist)"; return 0; }
  DIR=$(cd "$DIR" && pwd -P)
  set_paths "$DIR"
  mkdir -p "$LOGS"
  stop_stack
  rm -f "$DIR/stack.env"
}

cmd_status() {
  [[ -d $DIR ]] || { echo "mailstack: not running ($DIR does not exist)"; return 1; }
  DIR=$(cd "$DIR" && pwd -P)
  set_paths "$DIR"
  local pf dc dns rc=0
  pf=$(live_pid "$PF_PID_FILE" || true)
  dc=$(live_pid "$DC_PID_FILE" || true)
  dns=$(live_pid "$DNS_PID_FILE.start" || true)
  if [[ -n $pf ]]; then echo "postfix: running (master pid $pf)"; else echo "postfix: stopped"; fi
  if [[ -n $dc ]]; then echo "dovecot: running (master pid $dc)"; else echo "dovecot: stopped"; fi
  if [[ -n $dns ]]; then echo "unbound: running (pid $dns)"; else echo "unbound: stopped"; fi
  [[ -n $pf && -n $dc && -n $dns ]] || rc=1
  if [[ -r $DIR/stack.env ]]; then
    # X_PORT listens on X_HOST when stack.env has one, else on MAILSTACK_HOST.
    local line key host port
    local -A env=()
    read_env_file "$DIR/stack.env" env
    while IFS= read -r line; do
      case $line in
        MAILSTACK_CYRUS_*) ;;   # Cyrus's: tests/stack/cyrus.sh status
        *_PORT=*)
          key=${line%%=*} port=${line#*=}
          host=${env[${key%_PORT}_HOST]:-${env[MAILSTACK_HOST]:-$HOST}}
          if port_in_use "$host" "$port"; then echo "  $line listening"
          else echo "  $line closed"; rc=1; fi ;;
      esac
    done <"$DIR/stack.env"
  fi
  return $rc
}

# For the queue commands: DIR must hold a running stack's Postfix.
open_queue() {
  [[ $(id -u) -eq 0 ]] || die "must run as root"
  [[ -d $DIR ]] || die "$DIR does not exist"
  DIR=$(cd "$DIR" && pwd -P)
  set_paths "$DIR"
  live_pid "$PF_PID_FILE" >/dev/null || die "postfix is not running in $DIR"
}

# Ask the queue manager to try every queued message now (deferred included).
cmd_flush() {
  open_queue
  postqueue -c "$PF_CONF" -f </dev/null
}

# Move held messages (all, or the given queue ids) to the deferred queue, then
# flush: postsuper -H alone would leave them there until the next deferred
# queue scan (queue_run_delay, 300 s).
cmd_release_held() {
  open_queue
  local args=() id
  if (($# == 0)); then
    args=(-H ALL)
  else
    for id in "$@"; do
      [[ $id =~ ^[0-9A-Za-z]+$ ]] || die "not a queue id: '$id'"
      args+=(-H "$id")
    done
  fi
  postsuper -c "$PF_CONF" "${args[@]}" </dev/null   # "postsuper: Released from hold: N messages"
  postqueue -c "$PF_CONF" -f </dev/null
}

# One JSON object per queued message (postqueue -j): queue_name is "hold" for
# held mail, "incoming"/"active"/"deferred" otherwise; nothing when empty.
cmd_queue() {
  open_queue
  postqueue -c "$PF_CONF" -j </dev/null
}

# Store the message on stdin straight into a mailbox (default INBOX), as a
# mail client's APPEND would: no SMTP, no Received header, no Sieve. USER is
# "probe" or "probe@example.test".
cmd_save() {
  local user=$1 mailbox=${2:-INBOX}
  [[ $(id -u) -eq 0 ]] || die "must run as root"
  [[ -d $DIR ]] || die "$DIR does not exist"
  DIR=$(cd "$DIR" && pwd -P)
  set_paths "$DIR"
  live_pid "$DC_PID_FILE" >/dev/null || die "dovecot is not running in $DIR"
  [[ $user == *@* ]] || user=$user@$DOMAIN
  doveadm -c "$DC_CONF/dovecot.conf" save -u "$user" -m "$mailbox"
}

# Switch a fault on or off in the running stack: note it in DIR/faults, rewrite what reads it and
# have the daemon take it; stopped daemons wait until they are gone, started ones until every
# listener answers.
cmd_fault() {
  local fault=$1 state=$2 user=${3:-}
  [[ $(id -u) -eq 0 ]] || die "must run as root"
  [[ " ${FAULTS[*]} " == *" $fault "* ]] || die "unknown fault '$fault' (known: ${FAULTS[*]})"
  [[ $state == on || $state == off ]] || die "fault $fault: on or off, not '$state'"
  user=${user%@"$DOMAIN"}
  if [[ -n $user ]]; then
    [[ $fault == wrong-password ]] || die "only wrong-password takes a USER"
    [[ " ${USERS[*]} " == *" $user "* ]] || die "unknown user '$user' (known: ${USERS[*]})"
  fi
  [[ -r $DIR/stack.env ]] || die "no stack started in $DIR"
  DIR=$(cd "$DIR" && pwd -P)
  set_paths "$DIR"
  mkdir -p "$FAULT_DIR"
  if [[ $state == on ]]; then
    printf '%s' "${user:+$user$'\n'}" >"$FAULT_DIR/$fault"
  else
    rm -f "$FAULT_DIR/$fault"
  fi
  case $fault:$state in
    postfix-down:on)  stop_daemons postfix ;;
    postfix-down:off)
      start_postfix
      # shellcheck disable=SC2046
      wait_listeners "$START_TIMEOUT" port_ready postfix_alive $(postfix_listeners) ;;
    dovecot-down:on)  stop_daemons dovecot ;;
    dovecot-down:off)
      start_dovecot
      # shellcheck disable=SC2046
      wait_listeners "$START_TIMEOUT" port_ready dovecot_alive $(dovecot_listeners) ;;
    expired-cert:*|hold-all:*)
      write_postfix_config
      # A stopped Postfix reads the configuration when it starts.
      live_pid "$PF_PID_FILE" >/dev/null || return 0
      postfix -c "$PF_CONF" reload </dev/null >>"$LOGS/postfix-start.log" 2>&1 ||
        fail_with_logs "postfix reload failed"
      if [[ $fault:$state == hold-all:off ]]; then
        postsuper -c "$PF_CONF" -H ALL </dev/null
        postqueue -c "$PF_CONF" -f </dev/null
      fi ;;
    wrong-password:*) ensure_password; write_users ;;
    junk-all:*)       write_sieve_scripts ;;
  esac
  log "fault $fault ${user:+($user) }$state"
}

main() {
  [[ $# -ge 2 ]] || usage
  local cmd=$1
  DIR=$2
  shift 2
  [[ -n $DIR ]] || usage
  case $cmd in
    release-held) ;;
    save)         [[ $# -eq 1 || $# -eq 2 ]] || usage ;;
    fault)        [[ $# -eq 2 || $# -eq 3 ]] || usage ;;
    *)            [[ $# -eq 0 ]] || usage ;;
  esac
  set_ports
  set_paths "$DIR"
  case $cmd in
    start)        cmd_start ;;
    stop)         cmd_stop ;;
    status)       cmd_status || exit 1 ;;   # (|| keeps the ERR trap quiet)
    flush)        cmd_flush ;;
    release-held) cmd_release_held "$@" ;;
    queue)        cmd_queue ;;
    save)         cmd_save "$@" ;;
    fault)        cmd_fault "$@" ;;
    *)            usage ;;
  esac
}

main "$@"
