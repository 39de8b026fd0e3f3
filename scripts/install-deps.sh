#!/usr/bin/env bash
# Install the build and test dependencies of mailcanary on Debian 12.
#
# Idempotent: only missing packages are installed, and `apt-get update` runs
# only when something is missing. Installing postfix/dovecot/prometheus must
# not start system daemons (the test stack runs private instances on its own
# ports, and Debian's prometheus and alertmanager would otherwise sit on :9090
# and :9093/:9094).
#
# Cyrus IMAP is not installed: cyrus-imapd conflicts with dovecot-imapd (both are an
# imap-server), so its Debian packages are downloaded and unpacked into a cache
# (MAILCANARY_CYRUS_ROOT), from where tests/stack/cyrus.sh runs it; only the libraries it links
# are installed.
#
# Usage (as root, or with sudo available): bash scripts/install-deps.sh
set -euo pipefail

BUILD_PKGS=(
  g++ cmake ninja-build git pkg-config
  libboost-dev libssl-dev libcurl4-openssl-dev
  prometheus-cpp-dev libtomlplusplus-dev libgtest-dev libgmock-dev
)
RUNTIME_PKGS=(
  openssl curl ca-certificates iproute2 procps
  postfix dovecot-core dovecot-imapd dovecot-lmtpd dovecot-sieve
  prometheus prometheus-alertmanager
  # What the unpacked Cyrus links (cyrus-common's library Depends, less libclamav12 and
  # libzephyr4, which only the virus scanner and notifyd use) and the SASL plugins it checks
  # passwords with.
  libcom-err2 libical3 libicu72 libjansson4 libkrb5-3 libldap-2.5-0 libpcre3 libpq5
  libsasl2-2 libsasl2-modules libsasl2-modules-db libsqlite3-0 libwrap0 libxapian30 libxml2
)
# Unpacked, not installed (see above): master, imapd, lmtpd, idled; saslpasswd2.
CYRUS_DEBS=(cyrus-common cyrus-imapd sasl2-bin)
CYRUS_ROOT=${MAILCANARY_CYRUS_ROOT:-/var/cache/mailcanary/cyrus/root}

POLICY_RC=/usr/sbin/policy-rc.d
created_policy_rc=0

log() { printf 'install-deps: %s\n' "$*" >&2; }

as_root() {
  if [[ $(id -u) -eq 0 ]]; then "$@"; else sudo "$@"; fi
}

is_installed() {
  local status
  status=$(dpkg-query -W -f='${Status}' "$1" 2>/dev/null || true)
  [[ $status == "install ok installed" ]]
}

# policy-rc.d exiting 101 tells invoke-rc.d/deb-systemd-invoke "do not start".
install_policy_rc() {
  if [[ -e $POLICY_RC ]]; then
    return 0  # someone else's (e.g. a container image's); leave it alone
  fi
  printf '#!/bin/sh\n# temporary: written by mailcanary scripts/install-deps.sh\nexit 101\n' |
    as_root tee "$POLICY_RC" >/dev/null
  as_root chmod 0755 "$POLICY_RC"
  created_policy_rc=1
}

remove_policy_rc() {
  if [[ $created_policy_rc -eq 1 ]]; then
    as_root rm -f "$POLICY_RC"
    created_policy_rc=0
  fi
}

# Belt and braces: if a system instance runs anyway (policy-rc.d was ignored,
# or it was started before), stop it. Private test-stack instances (own -c
# config, own queue dir) are left alone.
stop_system_daemons() {
  local pid exe args
  # (comm is cut to 15 characters: prometheus-alertmanager shows as prometheus-aler)
  for pid in $(pgrep -x master || true) $(pgrep -x dovecot || true) $(pgrep -x prometheus || true) \
             $(pgrep -x prometheus-aler || true); do
    exe=$(readlink /proc/"$pid"/exe 2>/dev/null || true)
    args=$(tr '\0' ' ' </proc/"$pid"/cmdline 2>/dev/null || true)
    case "$exe" in
      */postfix/master)  # the system instance runs in the default queue dir
        [[ $(readlink /proc/"$pid"/cwd 2>/dev/null) == /var/spool/postfix ]] || continue ;;
      */sbin/dovecot)    # private instances are always started with -c
        [[ $args != *" -c "* ]] || continue ;;
      */bin/prometheus)  # Debian's service uses the default /etc/prometheus config
        [[ $args != *--config.file* || $args == *--config.file=/etc/prometheus/* ]] || continue ;;
      */bin/prometheus-alertmanager)  # likewise; the monitoring tests pass their own --config.file
        [[ $args != *--config.file* || $args == *--config.file=/etc/prometheus/* ]] || continue ;;
      *) continue ;;
    esac
    log "stopping system daemon pid $pid ($exe)"
    as_root kill "$pid" 2>/dev/null || true
  done
}

# Downloads CYRUS_DEBS (kept beside the root, in debs/) and unpacks them into CYRUS_ROOT, once:
# the stamp file lists what was unpacked. Delete the root to take newer packages.
unpack_cyrus() {
  local stamp=$CYRUS_ROOT.unpacked cache=${CYRUS_ROOT%/*}
  if [[ -f $stamp && -d $CYRUS_ROOT ]]; then
    echo "install-deps: Cyrus already unpacked in $CYRUS_ROOT ($(tr '\n' ' ' <"$stamp"))"
    return 0
  fi
  log "downloading and unpacking ${CYRUS_DEBS[*]} into $CYRUS_ROOT"
  as_root rm -rf "$cache/debs" "$CYRUS_ROOT" "$CYRUS_ROOT.tmp"
  as_root mkdir -p "$cache/debs"
  # apt-get download writes as its sandbox user (_apt).
  as_root chmod 0777 "$cache/debs"
  if ! (cd "$cache/debs" && as_root apt-get download -qq "${CYRUS_DEBS[@]}" </dev/null); then
    log "apt-get download failed; updating the package lists and trying again"
    as_root apt-get update -qq
    (cd "$cache/debs" && as_root apt-get download -qq "${CYRUS_DEBS[@]}" </dev/null)
  fi
  as_root chmod 0755 "$cache/debs"
  local deb
  for deb in "$cache"/debs/*.deb; do
    as_root dpkg -x "$deb" "$CYRUS_ROOT.tmp"
  done
  as_root mv "$CYRUS_ROOT.tmp" "$CYRUS_ROOT"
  (cd "$cache/debs" && ls ./*.deb) | sed 's|^\./||' | as_root tee "$stamp" >/dev/null
  echo "install-deps: unpacked $(tr '\n' ' ' <"$stamp")into $CYRUS_ROOT"
}

main() {
  export DEBIAN_FRONTEND=noninteractive

  local missing=() pkg
  for pkg in "${BUILD_PKGS[@]}" "${RUNTIME_PKGS[@]}"; do
    is_installed "$pkg" || missing+=("$pkg")
  done

  if [[ ${#missing[@]} -eq 0 ]]; then
    stop_system_daemons
    echo "install-deps: all ${#BUILD_PKGS[@]} build + ${#RUNTIME_PKGS[@]} runtime packages already installed"
    unpack_cyrus
    return 0
  fi

  log "missing: ${missing[*]}"
  trap remove_policy_rc EXIT
  install_policy_rc

  # "No configuration": postfix installs without asking and without main.cf;
  # the test stack brings its own configuration.
  printf '%s\n' \
    'postfix postfix/main_mailer_type select No configuration' \
    'postfix postfix/mailname string mail.example.test' |
    as_root debconf-set-selections

  as_root apt-get update -qq
  # --no-install-recommends: recommends would pull e.g. prometheus-node-exporter
  # (another daemon, :9100) and a lot of unrelated packages.
  local apt_log
  apt_log=$(mktemp /tmp/install-deps.XXXXXX.log)
  as_root apt-get install -y -qq --no-install-recommends \
    -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold \
    "${missing[@]}" </dev/null >"$apt_log" 2>&1 || {
      tail -n 40 "$apt_log" >&2
      log "apt-get install failed (full log: $apt_log)"
      exit 1
    }
  rm -f "$apt_log"

  stop_system_daemons
  remove_policy_rc
  trap - EXIT

  for pkg in "${missing[@]}"; do
    is_installed "$pkg" || { log "package $pkg still not installed"; exit 1; }
  done
  echo "install-deps: installed ${#missing[@]} package(s): ${missing[*]}"
  unpack_cyrus
}

main "$@"
