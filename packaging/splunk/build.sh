#!/usr/bin/env bash
# Builds the Splunk app packaging/splunk/TA-crosswind into TA-crosswind-<version>.tgz, the form
# Splunk installs and splunk-appinspect checks. The app's version is the workspace's.
#   packaging/splunk/build.sh [OUT_DIR]   (default: $CARGO_TARGET_DIR/splunk or target/splunk)
# Prints the package's path.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
out="${1:-${CARGO_TARGET_DIR:-$root/target}/splunk}"
version="$(sed -n 's/^version = "\(.*\)"$/\1/p' "$root/Cargo.toml" | head -n1)"
[ -n "$version" ] || { echo "build.sh: no workspace version in $root/Cargo.toml" >&2; exit 1; }

stage="$(mktemp -d)"
trap 'rm -rf "$stage"' EXIT
cp -R "$here/TA-crosswind" "$stage/"
# One version for the binary and the app: [launcher] and [id] in app.conf.
sed -i "s/^version = .*/version = $version/" "$stage/TA-crosswind/default/app.conf"
# No hidden files or editor leftovers in a Splunk package (AppInspect rejects them).
find "$stage/TA-crosswind" \( -name '.*' -o -name '*~' -o -name '*.swp' \) -exec rm -rf {} +
# Files 644, directories 755, nothing executable: the app has no scripts.
find "$stage/TA-crosswind" -type d -exec chmod 755 {} +
find "$stage/TA-crosswind" -type f -exec chmod 644 {} +

mkdir -p "$out"
tgz="$out/TA-crosswind-$version.tgz"
# Reproducible: sorted names, fixed owner and time.
tar -C "$stage" --sort=name --owner=0 --group=0 --numeric-owner --mtime='2020-01-01 00:00:00Z' \
  -cf - TA-crosswind | gzip -n > "$tgz"
echo "$tgz"
