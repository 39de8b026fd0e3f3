#!/usr/bin/env bash
# Install the build and test dependencies of mailcanary on Debian 12.
#
# Idempotent: only missing packages are installed, and `apt-get update` runs
# only when something is missing. Installing postfix/dovecot/prometheus must
# not start system daemons (the test stack runs private instances on its own
# ports, and Debian's prometheus and alertmanager would otherwise sit on :9090
# and :9093/:9094).
#
# Usage (as root, or with sudo available): bash scripts/install-deps.sh
set -euo pipefail

BUILD_PKGS=(
  g++ cmake ninja-build git pkg-config
  libboost-dev libssl-dev libcurl4-openssl-dev
  prometheus-cpp-dev libtomlplusplus-dev libgtest-dev libgmock-dev
)
RUNTIME_PKGS=(
  openssl curl ca-certificates iproute2 procps util-linux
  postfix dovecot-core dovecot-imapd dovecot-lmtpd dovecot-sieve
  prometheus prometheus-alertmanager
  # The shared libraries of the unpacked Exim and OpenSMTPD (see MTA_DEBS).
  libidn12 libgnutls-dane0 libnsl2 libdb5.3 libpcre2-8-0 libevent-2.1-7
)
# Exim and OpenSMTPD, which the integration tests run beside Postfix (tests/stack/mtas.sh). As
# packages they conflict with Postfix (each is a mail-transport-agent), so they are never
# installed: fetched with `apt-get download`, kept, and unpacked with `dpkg -x` under MTA_CACHE.
MTA_DEBS=(exim4-daemon-light opensmtpd)
MTA_CACHE=${MAILCANARY_MTA_CACHE:-/var/cache/mailcanary/mtas}

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

# $MTA_CACHE/debs holds the downloaded packages, $MTA_CACHE/roots/PKG each one unpacked (with
# its version in .version). A root that is there is used as it is: no network then.
fetch_mtas() {
  local pkg missing=()
  for pkg in "${MTA_DEBS[@]}"; do
    [[ -s $MTA_CACHE/roots/$pkg/.version ]] || missing+=("$pkg")
  done
  if [[ ${#missing[@]} -eq 0 ]]; then
    echo "install-deps: ${MTA_DEBS[*]} already unpacked in $MTA_CACHE/roots"
    return 0
  fi
  as_root mkdir -p "$MTA_CACHE/debs" "$MTA_CACHE/roots"
  local download
  download=$(as_root mktemp -d /tmp/mailcanary-debs.XXXXXX)
  as_root chmod 0777 "$download"   # apt-get download writes as its sandbox user, _apt
  # Lists may be missing (a fresh image) or name versions the mirror no longer has.
  if ! (cd "$download" && as_root apt-get download -qq "${missing[@]}") >/dev/null 2>&1; then
    as_root apt-get update -qq
    (cd "$download" && as_root apt-get download -qq "${missing[@]}") ||
      { log "apt-get download ${missing[*]} failed"; exit 1; }
  fi
  local deb version root
  for pkg in "${missing[@]}"; do
    deb=$(compgen -G "$download/${pkg}_*.deb" | head -n 1) || true
    [[ -n $deb ]] || { log "apt-get download left no $pkg package"; exit 1; }
    version=$(dpkg-deb -f "$deb" Version)
    as_root mv "$deb" "$MTA_CACHE/debs/"
    root=$MTA_CACHE/roots/$pkg
    as_root rm -rf "$root.tmp" "$root"
    as_root dpkg -x "$MTA_CACHE/debs/${deb##*/}" "$root.tmp"
    printf '%s\n' "$version" | as_root tee "$root.tmp/.version" >/dev/null
    as_root mv "$root.tmp" "$root"
    echo "install-deps: unpacked $pkg $version in $root"
  done
  as_root rm -rf "$download"
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
    fetch_mtas
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
  fetch_mtas
}

main "$@"
