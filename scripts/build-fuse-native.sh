#!/usr/bin/env bash
# Patch node_modules/fuse-native with native/fuse-native.patch and build the addon from source
# against the system libfuse 2 (`pkg-config fuse`, Debian's libfuse-dev) with node's own headers.
# No network. Idempotent: a stamp records which patch is applied and what was built, so a second
# run does nothing; a changed patch is re-applied onto the pristine files kept beside it.
#
# Usage: scripts/build-fuse-native.sh [path/to/fuse-native]   (default: node_modules/fuse-native)
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
PKG=$(cd "${1:-$ROOT/node_modules/fuse-native}" 2>/dev/null && pwd) || {
  echo "build-fuse-native: ${1:-node_modules/fuse-native} not found (run npm ci first)" >&2
  exit 1
}
PATCH=$ROOT/native/fuse-native.patch
PATCHED_FILES=(binding.gyp fuse-native.c index.js)
MARKER=SHADOWFS_FUSE_NATIVE_PATCH
PATCH_STAMP=$PKG/.shadowfs-patch # sha256 of the applied patch
ORIG=$PKG/.shadowfs-orig # pristine copies of the files the patch touches
BUILD_STAMP=$PKG/build/.shadowfs-build # what build/Release/fuse.node was built from
ADDON=$PKG/build/Release/fuse.node

die() {
  echo "build-fuse-native: $*" >&2
  exit 1
}

version=$(node -p "require('$PKG/package.json').version")
[ "$version" = 2.2.6 ] || die "the patch is for fuse-native 2.2.6, found $version in $PKG"
command -v patch >/dev/null || die "'patch' is missing (apt-get install patch)"
pkg-config --exists fuse || die "libfuse 2 development files are missing (apt-get install libfuse-dev pkg-config)"

# --- 1. patch ----------------------------------------------------------------------------------
want_patch=$(sha256sum "$PATCH" | cut -d' ' -f1)
have_patch=$(cat "$PATCH_STAMP" 2>/dev/null || true)
if [ "$have_patch" != "$want_patch" ]; then
  if [ -n "$have_patch" ]; then
    [ -d "$ORIG" ] || die "$PKG carries an older patch but no pristine copy: rm -rf $PKG && npm ci"
    for f in "${PATCHED_FILES[@]}"; do cp "$ORIG/$f" "$PKG/$f"; done
    echo "build-fuse-native: replacing an older patch"
  elif grep -q "$MARKER" "$PKG/fuse-native.c"; then
    die "$PKG is patched but has no stamp (patched by hand?): rm -rf $PKG && npm ci"
  else
    mkdir -p "$ORIG"
    for f in "${PATCHED_FILES[@]}"; do cp "$PKG/$f" "$ORIG/$f"; done
  fi
  patch -d "$PKG" -p1 --forward --batch --quiet <"$PATCH" || die "native/fuse-native.patch does not apply to $PKG"
  grep -q "$MARKER" "$PKG/fuse-native.c" || die "patch applied but the marker is missing"
  echo "$want_patch" >"$PATCH_STAMP"
  echo "build-fuse-native: patched $PKG"
fi

# --- 2. build ----------------------------------------------------------------------------------
# node-gyp: the copy bundled with npm, else the project's; --nodedir makes it use installed
# headers instead of downloading them.
npm_root=$(dirname "$(readlink -f "$(command -v npm)")")/..
GYP=
for g in "$npm_root/node_modules/node-gyp/bin/node-gyp.js" "$ROOT/node_modules/node-gyp/bin/node-gyp.js"; do
  if [ -f "$g" ]; then
    GYP=$g
    break
  fi
done
[ -n "$GYP" ] || die "node-gyp not found (neither bundled with npm nor in node_modules)"

NODEDIR=$(npm config get nodedir 2>/dev/null || true)
if [ -z "$NODEDIR" ] || [ "$NODEDIR" = undefined ] || [ "$NODEDIR" = null ]; then
  NODEDIR=$(dirname "$(dirname "$(readlink -f "$(command -v node)")")")
fi
[ -f "$NODEDIR/include/node/node_api.h" ] || die "node headers not found under $NODEDIR/include/node"

build_id="patch=$want_patch node=$(node -v) libfuse=$(pkg-config --modversion fuse)"
if [ -f "$ADDON" ] && [ "$(cat "$BUILD_STAMP" 2>/dev/null || true)" = "$build_id" ]; then
  echo "build-fuse-native: up to date ($ADDON)"
else
  echo "build-fuse-native: building $ADDON (node-gyp $(node "$GYP" --version), headers $NODEDIR)"
  # Built in a staging copy and renamed into place, so that processes starting meanwhile (tests,
  # mounts) load either the old addon or the new one, never a half-written or missing file.
  STAGE=$PKG/.shadowfs-stage
  rm -rf "$STAGE"
  mkdir -p "$STAGE"
  cp "$PKG/binding.gyp" "$PKG/fuse-native.c" "$PKG/package.json" "$STAGE/"
  [ -f "$PKG/semaphore.h" ] && cp "$PKG/semaphore.h" "$STAGE/"
  log=$(mktemp)
  if ! (cd "$STAGE" && node "$GYP" rebuild --release --nodedir="$NODEDIR") >"$log" 2>&1; then
    cat "$log" >&2
    rm -f "$log"
    die "node-gyp build failed"
  fi
  grep -iE "warning|error" "$log" || true
  rm -f "$log"
  mkdir -p "$(dirname "$ADDON")"
  cp "$STAGE/build/Release/fuse.node" "$ADDON.new"
  mv -f "$ADDON.new" "$ADDON"
  rm -rf "$STAGE"
  echo "$build_id" >"$BUILD_STAMP"
fi

# --- 3. load our build, never the prebuild (which bundles its own libfuse.so) ------------------
rm -rf "$PKG/prebuilds/linux-x64"
loaded=$(cd "$PKG" && node -p "require('path').resolve(require('node-gyp-build').path('.'))")
[ "$(readlink -f "$loaded")" = "$(readlink -f "$ADDON")" ] || die "node-gyp-build would load $loaded instead of $ADDON"
libfuse=$(ldd "$ADDON" | awk '/libfuse\.so\.2 =>/ {print $3}')
case "$libfuse" in
  /lib/* | /usr/lib/*) ;;
  *) die "$ADDON is not linked against the system libfuse.so.2 (got '$libfuse')" ;;
esac
node -e "require('$PKG')" || die "the built module does not load"
touch "$ADDON" # for make: the target is current even when nothing had to be rebuilt
echo "build-fuse-native: ok ($ADDON, $libfuse)"
