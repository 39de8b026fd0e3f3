#!/usr/bin/env bash
# A Debian 12 base image from Debian's packages alone, for building the image where no registry
# can be reached: mmdebstrap makes a minimal root (essential packages and apt, trimmed of
# documentation as Debian's bookworm-slim is) and podman imports it.
#
#   packaging/container/debian-base.sh [IMAGE]     # default IMAGE: localhost/mailcanary-base:bookworm
#
# The root is cached as a tarball (MAILCANARY_BASE_TAR, default
# /var/cache/mailcanary/container/bookworm-base.tar): delete it to take newer packages. The image is
# imported again only when the tarball changed, so podman's build cache stays valid.
set -euo pipefail

image=${1:-localhost/mailcanary-base:bookworm}
tarball=${MAILCANARY_BASE_TAR:-/var/cache/mailcanary/container/bookworm-base.tar}
readonly MIRROR=http://deb.debian.org/debian
readonly SECURITY_MIRROR=http://deb.debian.org/debian-security
readonly LABEL=org.mailcanary.base.sha256

log() { printf 'debian-base: %s\n' "$*" >&2; }

if [[ ! -s $tarball ]]; then
  log "making a Debian 12 root with mmdebstrap into $tarball"
  mkdir -p "$(dirname "$tarball")"
  # merged-usr: as Debian 12 installs it (else usrmerge is installed, and perl with it).
  rm -f "$tarball.tmp"
  mmdebstrap --quiet --format=tar --variant=apt --hook-dir=/usr/share/mmdebstrap/hooks/merged-usr \
    --dpkgopt='path-exclude=/usr/share/man/*' --dpkgopt='path-exclude=/usr/share/info/*' \
    --dpkgopt='path-exclude=/usr/share/locale/*' --dpkgopt='path-include=/usr/share/locale/locale.alias' \
    --dpkgopt='path-exclude=/usr/share/doc/*' --dpkgopt='path-include=/usr/share/doc/*/copyright' \
    bookworm "$tarball.tmp" \
    "deb $MIRROR bookworm main" "deb $MIRROR bookworm-updates main" \
    "deb $SECURITY_MIRROR bookworm-security main"
  mv "$tarball.tmp" "$tarball"
fi

sum=$(sha256sum "$tarball" | cut -d' ' -f1)
if [[ $(podman image inspect --format "{{index .Labels \"$LABEL\"}}" "$image" 2>/dev/null) == "$sum" ]]; then
  log "$image is up to date with $tarball"
else
  log "importing $tarball as $image"
  podman import --quiet --change "LABEL $LABEL=$sum" --change 'CMD ["/bin/bash"]' \
    "$tarball" "$image" >/dev/null
fi
