#!/usr/bin/env bash
# Builds a local stand-in for the Dockerfile's base image (node:20-slim) when no container
# registry can be reached: a Debian bookworm minbase made by debootstrap from Debian's packages,
# plus this machine's Node 20 laid out as the official image has it (/usr/local/bin/node, npm and
# npx, the headers in /usr/local/include/node) and its `node` user (uid 1000). It is stored under
# the very tag the Dockerfile names, so `podman build` runs on the Dockerfile unchanged.
#
# Usage: deploy/image/build-base.sh [--force]
# Needs: root, podman, debootstrap (apt-get install -y podman runc debootstrap), node 20 on PATH.
# Environment: DEBIAN_MIRROR (default http://deb.debian.org/debian), PODMAN (see podman.sh).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
source "$ROOT/deploy/image/podman.sh"
TAG=$(base_image "$ROOT/Dockerfile")
MIRROR=${DEBIAN_MIRROR:-http://deb.debian.org/debian}

if [ "${1:-}" != "--force" ] && $PODMAN image exists "$TAG"; then
  echo "base image $TAG exists (--force rebuilds it)"
  exit 0
fi

node_bin=$(node -p process.execPath)
node_major=$(node -p 'process.versions.node.split(".")[0]')
case "$TAG" in
  *node:"$node_major"*) ;;
  *) echo "this machine's node is $node_major, the Dockerfile wants $TAG" >&2; exit 1 ;;
esac
# npm and the headers sit beside node in every standard install (/usr or /usr/local, nvm, tarballs)
prefix=$(cd "$(dirname "$node_bin")/.." && pwd)
npm_dir="$prefix/lib/node_modules/npm"
[ -d "$npm_dir" ] || { echo "npm not found at $npm_dir" >&2; exit 1; }
[ -f "$prefix/include/node/node.h" ] || { echo "node headers not found at $prefix/include/node" >&2; exit 1; }

work=$(mktemp -d /var/tmp/chat-base.XXXXXX)
trap 'rm -rf "$work"' EXIT
rootfs="$work/rootfs"

echo "debootstrap bookworm (minbase) from $MIRROR"
debootstrap --variant=minbase bookworm "$rootfs" "$MIRROR" >"$work/debootstrap.log" 2>&1 \
  || { tail -20 "$work/debootstrap.log" >&2; exit 1; }

echo "node $(node -v) from $node_bin, npm $(node "$npm_dir/bin/npm-cli.js" -v)"
install -m 0755 "$node_bin" "$rootfs/usr/local/bin/node"
mkdir -p "$rootfs/usr/local/lib/node_modules" "$rootfs/usr/local/include"
cp -a "$npm_dir" "$rootfs/usr/local/lib/node_modules/npm"
cp -a "$prefix/include/node" "$rootfs/usr/local/include/node"
ln -sf ../lib/node_modules/npm/bin/npm-cli.js "$rootfs/usr/local/bin/npm"
ln -sf ../lib/node_modules/npm/bin/npx-cli.js "$rootfs/usr/local/bin/npx"

# This machine may reach the npm registry only through a TLS proxy that its own trust store knows
# (npm's `cafile`, as this machine's npm has it): the stand-in trusts what the machine trusts, so
# that `npm ci` in the build works here as it does on the host. The real image needs none of it.
cafile=$(npm config get cafile 2>/dev/null || true)
if [ -n "$cafile" ] && [ "$cafile" != null ] && [ -f "$cafile" ]; then
  echo "npm cafile $cafile goes into the stand-in (/usr/local/etc/npmrc)"
  mkdir -p "$rootfs/usr/local/etc" "$rootfs/usr/local/share/ca-certificates"
  cp "$cafile" "$rootfs/usr/local/share/ca-certificates/host-ca-bundle.crt"
  echo "cafile=/usr/local/share/ca-certificates/host-ca-bundle.crt" > "$rootfs/usr/local/etc/npmrc"
fi

# the official image's unprivileged user
chroot "$rootfs" groupadd --gid 1000 node
chroot "$rootfs" useradd --uid 1000 --gid node --shell /bin/bash --create-home node
# slim: no package lists, docs or caches
rm -rf "$rootfs"/var/lib/apt/lists/* "$rootfs"/var/cache/apt/*.bin "$rootfs"/usr/share/doc/* \
  "$rootfs"/usr/share/man/* "$rootfs"/usr/share/info/* "$rootfs"/tmp/*

chroot "$rootfs" /usr/local/bin/node -e 'process.stdout.write(`node ${process.version} runs in the rootfs\n`)'

echo "importing as $TAG"
tar -C "$rootfs" -c . | $PODMAN import \
  --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
  --change 'CMD ["node"]' \
  - "$TAG" >/dev/null
$PODMAN image exists "$TAG"
echo "built $TAG"
