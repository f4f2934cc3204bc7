#!/usr/bin/env bash
# Regenerate native/fuse-native.patch after editing the patched files in place
# (node_modules/fuse-native/{binding.gyp,fuse-native.c,index.js}): diffs them against the pristine
# copies that scripts/build-fuse-native.sh keeps in .shadowfs-orig/, keeping the patch's header.
# Then run scripts/build-fuse-native.sh again (it re-applies the new patch onto the pristine files).
#
# Usage: scripts/make-fuse-native-patch.sh [path/to/fuse-native]
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
PKG=${1:-$ROOT/node_modules/fuse-native}
PATCH=$ROOT/native/fuse-native.patch
[ -d "$PKG/.shadowfs-orig" ] || {
  echo "make-fuse-native-patch: no $PKG/.shadowfs-orig (run scripts/build-fuse-native.sh first)" >&2
  exit 1
}

new=$(mktemp)
# The header: everything before the first file diff.
sed -n '/^--- a\//q;p' "$PATCH" >"$new"
for f in binding.gyp fuse-native.c index.js; do
  diff -u --label "a/$f" --label "b/$f" "$PKG/.shadowfs-orig/$f" "$PKG/$f" >>"$new" || [ $? -eq 1 ]
done
mv "$new" "$PATCH"
echo "make-fuse-native-patch: wrote $PATCH ($(grep -c '^@@' "$PATCH") hunks)"
