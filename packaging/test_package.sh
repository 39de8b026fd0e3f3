#!/usr/bin/env bash
# Builds the Debian package from a configured and built tree and proves it:
#   - lintian finds no error and no warning;
#   - installed into a fresh Debian 12 root (mmdebstrap from Debian's mirror), it creates the
#     mailcanary system user and installs the unit without enabling it; `mailcanary --version`
#     and `--config.check` on the packaged configuration work there;
#   - the unit passes `systemd-analyze verify`, and `systemd-analyze security` rates its exposure
#     at most 2.0 (the figure docs/deploy.md states);
#   - the agent, started as its user on the packaged configuration (in a network namespace of
#     its own), answers /-/healthy, creates its secret in the state directory, reloads on SIGHUP
#     and stops on SIGTERM;
#   - an upgrade keeps a changed configuration file, and a purge removes it and the state.
# systemd is not PID 1 here: the unit is checked with systemd-analyze's offline forms only.
#
# Usage (as root): packaging/test_package.sh BUILD_DIR
# The root is made once and kept in MAILCANARY_PACKAGE_ROOT_CACHE (default
# /var/cache/mailcanary/package-root), under a name that changes with the packages it holds; each
# run works on an overlay of it, so the cached root stays fresh and nothing is copied.
set -euo pipefail

readonly max_exposure=2.0
readonly agent_port=9725 # the packaged configuration's; free in the agent's own namespace
source_dir=$(cd "$(dirname "$0")/.." && pwd)

log() { printf 'test_package: [%3ds] %s\n' "$SECONDS" "$*" >&2; }
fail() {
  log "FAILED: $*"
  exit 1
}

# A command in the Debian root, with a clean environment; as the agent's user.
readonly root_env=(/usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin LC_ALL=C.UTF-8)
readonly agent_user=(setpriv --reuid=mailcanary --regid=mailcanary --init-groups --)
in_root() { chroot "$root" "${root_env[@]}" "$@"; }

# The agent as its unit starts it, in this process's own network and PID namespaces (the
# script runs itself under unshare for this part).
run_agent_in_namespace() {
  root=$1
  ip link set lo up
  mount -t proc proc "$root/proc"
  # The packaged configuration, plus a target whose probe sends mail: such an agent creates its
  # secret at start, where the packaged configuration says (nothing listens on port 25 here).
  local config=/etc/mailcanary/mailcanary.toml test_config=/tmp/mailcanary-test.toml
  {
    cat "$root$config"
    printf '\n[[targets]]\nname = "sends-mail"\nhost = "127.0.0.1"\nprobes = ["accept"]\n'
    printf '[targets.message]\nfrom = "canary@example.org"\nto = ["canary@example.net"]\n'
  } >"$root$test_config"
  chmod 0644 "$root$test_config"
  local exec_start
  exec_start=$(sed -n 's/^ExecStart=//p' "$root/usr/lib/systemd/system/mailcanary.service")
  [[ $exec_start == "/usr/bin/mailcanary --config.file=$config" ]] ||
    fail "unexpected ExecStart: $exec_start"

  local agent_log=$root/tmp/mailcanary.log
  # Not through a function: $! is then the agent itself (chroot, env and setpriv exec it).
  # shellcheck disable=SC2086 # ExecStart's words
  chroot "$root" "${root_env[@]}" "${agent_user[@]}" ${exec_start/$config/$test_config} \
    2>"$agent_log" &
  local agent=$!
  local url=http://127.0.0.1:$agent_port
  for _ in $(seq 100); do
    curl -fsS "$url/-/healthy" >/dev/null 2>&1 && break
    kill -0 "$agent" 2>/dev/null || { cat "$agent_log" >&2; fail "the agent exited at start"; }
    sleep 0.1
  done
  curl -fsS "$url/-/healthy" >/dev/null || { cat "$agent_log" >&2; fail "no answer on /-/healthy"; }
  local metrics
  metrics=$(curl -fsS "$url/metrics") || fail "no answer on /metrics"
  grep -q '^mailcanary_config_last_reload_successful 1' <<<"$metrics" ||
    fail "/metrics does not say the configuration loaded"

  local secret=/var/lib/mailcanary/mailcanary.secret owner
  [[ -s $root$secret ]] || fail "no secret at $secret"
  owner=$(in_root stat -c '%U %a' "$secret") # the root's user names, not the host's
  [[ $owner == "mailcanary 600" ]] || fail "the secret is $owner, not mailcanary 600"

  # ExecReload's signal.
  kill -HUP "$agent"
  for _ in $(seq 50); do
    grep -q 'configuration reloaded' "$agent_log" && break
    sleep 0.1
  done
  grep -q 'configuration reloaded' "$agent_log" || { cat "$agent_log" >&2; fail "no reload on SIGHUP"; }

  kill -TERM "$agent"
  local status=0
  wait "$agent" || status=$?
  ((status == 0)) || { cat "$agent_log" >&2; fail "the agent exited with $status on SIGTERM"; }
}

if [[ ${1:-} == --run-agent-in-namespace ]]; then
  SECONDS=$3 # the clock of the run that started this one, for log lines
  run_agent_in_namespace "$2"
  exit 0
fi

build_dir=$(cd "${1:?usage: test_package.sh BUILD_DIR}" && pwd)
cache_dir=${MAILCANARY_PACKAGE_ROOT_CACHE:-/var/cache/mailcanary/package-root}
work=$(mktemp -d /tmp/mailcanary-package.XXXXXX)
root=$work/root
cleanup() {
  mountpoint -q "$root/proc" && umount "$root/proc"
  mountpoint -q "$root" && umount "$root"
  rm -rf "$work"
}
trap cleanup EXIT

log "building the package"
rm -f "$build_dir"/package/mailcanary_*.deb
(cd "$build_dir" && cpack -G DEB >"$work/cpack.log" 2>&1) || { cat "$work/cpack.log" >&2; fail "cpack"; }
debs=("$build_dir"/package/mailcanary_*.deb)
deb=${debs[0]}
[[ -f $deb ]] || fail "cpack made no .deb"
version=$(dpkg-deb -f "$deb" Version)
log "built $(basename "$deb"); Depends: $(dpkg-deb -f "$deb" Depends)"

log "lintian"
lintian_status=0
lintian_report=$(lintian --fail-on error,warning "$deb" 2>&1) || lintian_status=$?
grep -v 'running with root privileges' <<<"$lintian_report" >&2 || true
((lintian_status == 0)) || fail "lintian reports errors or warnings"

# The root holds the package's dependencies (as dpkg-shlibdeps computed them) and systemd, so that
# dpkg -i must find every dependency satisfied and systemd-analyze sees Debian's own units.
packages=$( (dpkg-deb -f "$deb" Depends | tr ',' '\n' | sed -E 's/[|(].*//; s/ //g'; echo systemd) |
  sort -u | paste -sd, -)
fresh_root=$cache_dir/bookworm-$(sha256sum <<<"$packages" | cut -c1-16)
if [[ ! -d $fresh_root ]]; then
  log "making a Debian 12 root with $packages (once; cached in $fresh_root)"
  mkdir -p "$cache_dir"
  rm -rf "$cache_dir"/bookworm-* "$cache_dir"/partial-*
  partial=$cache_dir/partial-$(basename "$fresh_root") # renamed once complete
  mmdebstrap --quiet --variant=essential --format=directory --dpkgopt=force-unsafe-io \
    --include="$packages" bookworm "$partial" || fail "mmdebstrap"
  mv "$partial" "$fresh_root"
fi
mkdir "$root" "$work/changes" "$work/overlay"
mount -t overlay overlay \
  -o "lowerdir=$fresh_root,upperdir=$work/changes,workdir=$work/overlay" "$root"

log "installing into the root"
cp "$deb" "$root/tmp/mailcanary.deb"
in_root dpkg -i /tmp/mailcanary.deb </dev/null >"$work/dpkg.log" 2>&1 ||
  { cat "$work/dpkg.log" >&2; fail "dpkg -i"; }

[[ $(in_root mailcanary --version) == "mailcanary $version "* ]] ||
  fail "mailcanary --version: $(in_root mailcanary --version)"
in_root "${agent_user[@]}" mailcanary --config.check --config.file=/etc/mailcanary/mailcanary.toml \
  >&2 || fail "--config.check on the packaged configuration"

IFS=: read -r _ _ uid _ _ home shell < <(in_root getent passwd mailcanary) ||
  fail "no mailcanary user"
if ((uid >= 1000)) || [[ $home != /var/lib/mailcanary || $shell != /usr/sbin/nologin ]]; then
  fail "mailcanary user: uid $uid, home $home, shell $shell"
fi
[[ -f $root/usr/lib/systemd/system/mailcanary.service ]] || fail "no unit installed"
if compgen -G "$root/etc/systemd/system/*/mailcanary.service" >/dev/null; then
  fail "the unit was enabled: $(ls "$root"/etc/systemd/system/*/mailcanary.service)"
fi
# shellcheck disable=SC2016 # dpkg-query's own ${field} syntax
in_root dpkg-query -W -f='${Conffiles}\n' mailcanary | grep -q '^ /etc/mailcanary/mailcanary.toml ' ||
  fail "/etc/mailcanary/mailcanary.toml is not a conffile"
log "installed: --version, --config.check as mailcanary, system user $uid, unit not enabled, conffile"

log "systemd-analyze"
mount -t proc proc "$root/proc"
in_root systemd-analyze verify --man=no mailcanary.service ||
  fail "systemd-analyze verify mailcanary.service"
security=$(in_root systemd-analyze security --offline=yes mailcanary.service 2>&1) ||
  { echo "$security" >&2; fail "systemd-analyze security"; }
exposure=$(sed -n 's/.*Overall exposure level for mailcanary.service: \([0-9.]*\).*/\1/p' <<<"$security")
[[ -n $exposure ]] || { echo "$security" >&2; fail "no exposure level in systemd-analyze's report"; }
awk -v e="$exposure" -v max="$max_exposure" 'BEGIN { exit !(e <= max) }' ||
  { echo "$security" >&2; fail "exposure $exposure is over $max_exposure"; }
grep -q "exposure level of $exposure " "$source_dir/docs/deploy.md" ||
  fail "docs/deploy.md does not state the exposure level $exposure"
umount "$root/proc"
log "unit: verify passes; exposure $exposure (at most $max_exposure)"

log "starting the agent as mailcanary"
unshare --net --pid --mount --fork --kill-child bash "$0" --run-agent-in-namespace "$root" "$SECONDS"
log "agent: healthy, secret created (mailcanary, 0600), reloaded on SIGHUP, stopped on SIGTERM"

log "upgrade with a changed configuration"
echo '# changed by the administrator' >>"$root/etc/mailcanary/mailcanary.toml"
dpkg-deb -R "$deb" "$work/upgrade"
sed -i "s/^Version: .*/Version: $version+upgradetest/" "$work/upgrade/DEBIAN/control"
dpkg-deb -b -Znone --root-owner-group "$work/upgrade" "$root/tmp/upgrade.deb" >/dev/null
in_root dpkg -i /tmp/upgrade.deb </dev/null >"$work/dpkg.log" 2>&1 ||
  { cat "$work/dpkg.log" >&2; fail "upgrade"; }
# shellcheck disable=SC2016
[[ $(in_root dpkg-query -W -f='${Version}' mailcanary) == "$version+upgradetest" ]] ||
  fail "upgrade did not install $version+upgradetest"
tail -n 1 "$root/etc/mailcanary/mailcanary.toml" | grep -qx '# changed by the administrator' ||
  fail "the upgrade replaced the changed configuration"
if compgen -G "$root/etc/mailcanary/mailcanary.toml.dpkg-*" >/dev/null; then
  fail "the upgrade left $(ls "$root"/etc/mailcanary/mailcanary.toml.dpkg-*)"
fi

in_root dpkg --purge mailcanary </dev/null >"$work/dpkg.log" 2>&1 ||
  { cat "$work/dpkg.log" >&2; fail "purge"; }
[[ ! -e $root/etc/mailcanary/mailcanary.toml && ! -e $root/var/lib/mailcanary ]] ||
  fail "purge left the configuration or /var/lib/mailcanary"
log "upgrade kept the changed configuration; purge removed it and the state"
log "passed"
