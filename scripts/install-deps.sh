#!/usr/bin/env bash
# Install the build and test dependencies of mailcanary on Debian 12.
#
# Idempotent: only missing packages are installed, and `apt-get update` runs
# only when something is missing. Installing postfix/dovecot/prometheus must
# not start system daemons (the test stack runs private instances on its own
# ports, and Debian's prometheus and alertmanager would otherwise sit on :9090
# and :9093/:9094).
#
# Cyrus IMAP, Exim and OpenSMTPD are not installed: each conflicts with a package the stack
# needs (cyrus-imapd with dovecot-imapd, both an imap-server; exim4 and opensmtpd with postfix,
# each a mail-transport-agent). Their Debian packages are downloaded and unpacked into caches
# (MAILCANARY_CYRUS_ROOT, MAILCANARY_MTA_CACHE), from where tests/stack/cyrus.sh and
# tests/stack/mtas.sh run them; only the libraries they link are installed.
#
# Usage (as root, or with sudo available): bash scripts/install-deps.sh
set -euo pipefail

BUILD_PKGS=(
  g++ cmake ninja-build git pkg-config
  ccache  # scripts/mutants.sh's scratch build takes the release build's objects from it
  libboost-dev libssl-dev libcurl4-openssl-dev
  prometheus-cpp-dev libtomlplusplus-dev libgtest-dev libgmock-dev
  libyaml-cpp-dev libcrypt-dev
  libc-ares-dev  # name resolution on the agent's loop (protocols/dns_resolver.cpp)
  # The fuzzers (libFuzzer is in clang's runtime libraries) and clang-tidy (scripts/test.sh).
  clang-14 libclang-rt-14-dev clang-tidy-14
)
RUNTIME_PKGS=(
  openssl curl ca-certificates iproute2 procps util-linux
  postfix dovecot-core dovecot-imapd dovecot-lmtpd dovecot-sieve
  unbound  # the test stack's DNS server for the zone canary.test (tests/stack/mailstack.sh)
  prometheus prometheus-alertmanager
  # What the unpacked Cyrus links (cyrus-common's library Depends, less libclamav12 and
  # libzephyr4, which only the virus scanner and notifyd use) and the SASL plugins it checks
  # passwords with.
  libcom-err2 libical3 libicu72 libjansson4 libkrb5-3 libldap-2.5-0 libpcre3 libpq5
  libsasl2-2 libsasl2-modules libsasl2-modules-db libsqlite3-0 libwrap0 libxapian30 libxml2
  # What the unpacked Exim and OpenSMTPD link.
  libidn12 libgnutls-dane0 libnsl2 libdb5.3 libpcre2-8-0 libevent-2.1-7
  # The package test (packaging/test_package.sh): cpack's dpkg-shlibdeps, lintian, and a fresh
  # Debian 12 root to install into.
  dpkg-dev lintian mmdebstrap
)
# The Kubernetes manifests' checks (tests/kubernetes): yamllint, and node with npm unless the
# machine has them already (a Node.js from elsewhere, e.g. NodeSource's nodejs, which brings
# its own npm and conflicts with Debian's npm package).
RUNTIME_PKGS+=(yamllint)
if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
  RUNTIME_PKGS+=(nodejs npm)
fi
# The status page's browser test (tests/browser): Debian's chromium, driven by puppeteer-core
# from npm (node and npm as above).
RUNTIME_PKGS+=(chromium)
# The container test (tests/container): podman with runc (crun, its default, cannot run on hosts
# like CI's) and catatonit (which makes a pod's infra image locally: no registry is reachable), and
# mmdebstrap for a Debian base image.
CONTAINER_PKGS=(podman runc catatonit mmdebstrap)
# Unpacked, not installed (see above), into one root: master, imapd, lmtpd, idled; saslpasswd2.
CYRUS_DEBS=(cyrus-common cyrus-imapd sasl2-bin)
CYRUS_ROOT=${MAILCANARY_CYRUS_ROOT:-/var/cache/mailcanary/cyrus/root}
# Unpacked, not installed, each into MTA_CACHE/roots/PACKAGE.
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

# unpack_debs ROOT PACKAGE...: downloads the Debian packages (kept in ROOT.debs/) and unpacks
# them all into ROOT, once: ROOT.unpacked lists each package with its version. A root that is
# there is used as it is, without the network; delete it to take newer packages.
unpack_debs() {
  local root=$1; shift
  local stamp=$root.unpacked debs=$root.debs
  if [[ -s $stamp && -d $root ]]; then
    echo "install-deps: already unpacked in $root: $(tr '\n' ' ' <"$stamp")"
    return 0
  fi
  log "downloading and unpacking $* into $root"
  as_root rm -rf "$debs" "$root" "$root.tmp" "$stamp"
  as_root mkdir -p "$debs"
  as_root chmod 0777 "$debs"   # apt-get download writes as its sandbox user, _apt
  # The package lists may be missing (a fresh image) or name versions the mirror no longer has.
  if ! (cd "$debs" && as_root apt-get download -qq "$@" </dev/null); then
    log "apt-get download failed; updating the package lists and trying again"
    as_root apt-get update -qq
    (cd "$debs" && as_root apt-get download -qq "$@" </dev/null) ||
      { log "apt-get download $* failed"; exit 1; }
  fi
  as_root chmod 0755 "$debs"
  local deb
  for deb in "$debs"/*.deb; do
    as_root dpkg -x "$deb" "$root.tmp"
    # shellcheck disable=SC2016  # dpkg-deb's own ${field} syntax
    dpkg-deb --show --showformat='${Package} ${Version}\n' "$deb"
  done | as_root tee "$root.tmp.unpacked" >/dev/null
  as_root mv "$root.tmp" "$root"
  as_root mv "$root.tmp.unpacked" "$stamp"
  echo "install-deps: unpacked in $root: $(tr '\n' ' ' <"$stamp")"
}

unpack_conflicting_servers() {
  unpack_debs "$CYRUS_ROOT" "${CYRUS_DEBS[@]}"
  local pkg
  for pkg in "${MTA_DEBS[@]}"; do
    unpack_debs "$MTA_CACHE/roots/$pkg" "$pkg"
  done
}

main() {
  export DEBIAN_FRONTEND=noninteractive

  local missing=() pkg
  for pkg in "${BUILD_PKGS[@]}" "${RUNTIME_PKGS[@]}" "${CONTAINER_PKGS[@]}"; do
    is_installed "$pkg" || missing+=("$pkg")
  done

  if [[ ${#missing[@]} -eq 0 ]]; then
    stop_system_daemons
    echo "install-deps: all ${#BUILD_PKGS[@]} build + ${#RUNTIME_PKGS[@]} runtime + ${#CONTAINER_PKGS[@]} container packages already installed"
    unpack_conflicting_servers
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
  unpack_conflicting_servers
}

main "$@"
