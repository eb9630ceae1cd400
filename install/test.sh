#!/usr/bin/env bash
# Tests install/install.sh (the Action's download and check) against a release served the way
# GitHub serves one, from a server on 127.0.0.1: `/OWNER/REPO/releases/download/vX.Y.Z/ASSET`
# answers 302 to the asset's storage URL, with a `.sha256` file beside each archive (which the
# script must never trust). The archive holds the binary given, laid out as dist lays it out.
# The table's row for it is written by install/record-release.sh, the release step, tested here.
#
#   install/test.sh target/release/idprune
#
# Checks: the right checksum installs and `idprune --version` matches; a tampered archive (whose
# fetched `.sha256` matches it) is refused and nothing is installed; an unknown version, an
# unsupported platform and a release without the platform's archive are clear errors.
set -euo pipefail

bin=${1:?usage: install/test.sh PATH-TO-IDPRUNE}
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
script="$here/install.sh"
work=$(mktemp -d)
server_pid=""
cleanup() {
  [ -z "$server_pid" ] || kill "$server_pid" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

fail() {
  printf 'install test failed: %s\n' "$*" >&2
  exit 1
}

version=$("$bin" --version | awk '{ print $2 }')
[ -n "$version" ] || fail "\`$bin --version\` printed no version"
case "$(uname -s)/$(uname -m)" in
  Linux/x86_64) target=x86_64-unknown-linux-musl ;;
  Linux/aarch64) target=aarch64-unknown-linux-gnu ;;
  Darwin/x86_64) target=x86_64-apple-darwin ;;
  Darwin/arm64) target=aarch64-apple-darwin ;;
  *) fail "no release target for this machine ($(uname -s)/$(uname -m))" ;;
esac
archive="idprune-$target.tar.gz"

# The release as dist builds it: a directory named after the archive, the binary inside.
mkdir -p "$work/stage/idprune-$target" "$work/assets/v$version" "$work/assets/v9.0.0"
cp "$bin" "$work/stage/idprune-$target/idprune"
tar -czf "$work/assets/v$version/$archive" -C "$work/stage" "idprune-$target"
sha=$(sha256sum "$work/assets/v$version/$archive" | cut -d' ' -f1)
echo "$sha  $archive" > "$work/assets/v$version/$archive.sha256"
# 9.0.0: the same archive with one byte changed, and a fetched checksum file that agrees with it.
cp "$work/assets/v$version/$archive" "$work/assets/v9.0.0/$archive"
printf 'X' | dd of="$work/assets/v9.0.0/$archive" bs=1 seek=100 conv=notrunc status=none
sha256sum "$work/assets/v9.0.0/$archive" | sed "s#  .*#  $archive#" > "$work/assets/v9.0.0/$archive.sha256"

# The injected table: this build's row as the release step records it (install/record-release.sh
# from the archives at hand), the untampered sha256 for 9.0.0, and a release that has an archive
# for another platform only.
printf '# test table\n9.0.0\t%s\t%s\n8.0.0\tx86_64-pc-windows-msvc\t%s\n' "$target" "$sha" "$sha" \
  > "$work/checksums.tsv"
"$here/record-release.sh" "v$version" --archives "$work/assets/v$version" --table "$work/checksums.tsv"
grep -q "^$version	$target	$sha\$" "$work/checksums.tsv" || fail "record-release.sh wrote no row for $version $target"
if "$here/record-release.sh" "v$version" --archives "$work/assets/v$version" --table "$work/checksums.tsv" 2>/dev/null; then
  fail "record-release.sh rewrote the rows of $version"
fi

cat > "$work/server.py" <<'EOF'
# GitHub's layout: /OWNER/REPO/releases/download/TAG/ASSET redirects to the asset's storage.
import http.server, sys
root = sys.argv[1]
PREFIX = "/idprune/idprune/releases/download/"
class Handler(http.server.SimpleHTTPRequestHandler):
    def __init__(self, *a, **k):
        super().__init__(*a, directory=root, **k)
    def do_GET(self):
        if self.path.startswith(PREFIX):
            self.send_response(302)
            self.send_header("Location", "/storage/" + self.path[len(PREFIX):])
            self.end_headers()
            return
        if self.path.startswith("/storage/"):
            self.path = self.path[len("/storage"):]
            return super().do_GET()
        self.send_error(404)
    def log_message(self, *a):
        pass
server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
print(server.server_address[1], flush=True)
server.serve_forever()
EOF
# The server prints its port once it listens; reading that line is the wait.
exec 3< <(exec python3 "$work/server.py" "$work/assets")
server_pid=$!
read -r -t 60 -u 3 port || fail "the test server printed no port"
base="http://127.0.0.1:$port/idprune/idprune/releases/download"

run() { # DIR ARGS...: runs the script against the test server and table, output in $work/out
  local dir=$1
  shift
  IDPRUNE_DOWNLOAD_URL="$base" IDPRUNE_CHECKSUMS="$work/checksums.tsv" IDPRUNE_ATTESTATION=off \
    "$script" --dir "$dir" "$@" > "$work/out" 2>&1
}
expect_refused() { # NAME DIR PATTERN ARGS...
  local name=$1 dir=$2 pattern=$3
  shift 3
  if run "$dir" "$@"; then fail "$name: the script succeeded"; fi
  grep -q -- "$pattern" "$work/out" || fail "$name: no \`$pattern\` in: $(cat "$work/out")"
  [ ! -e "$dir/idprune" ] || fail "$name: a binary was installed"
  echo "ok: $name: $(cat "$work/out")"
}

start=$(date +%s%N)
run "$work/good" --version "$version" || fail "the right checksum did not install: $(cat "$work/out")"
end=$(date +%s%N)
got=$("$work/good/idprune" --version)
[ "$got" = "idprune $version" ] || fail "installed binary says \`$got\`, expected \`idprune $version\`"
echo "ok: right checksum installs \`$got\` ($(( (end - start) / 1000000 )) ms: download from loopback, sha256, extract, install)"
run "$work/good-v" --version "v$version" || fail "a \`v\`-prefixed version did not install: $(cat "$work/out")"
echo "ok: \`v$version\` is the same release"

expect_refused "tampered archive" "$work/tampered" "sha256 mismatch" --version 9.0.0
expect_refused "unknown version" "$work/unknown" "unknown version \`7.7.7\`" --version 7.7.7
expect_refused "unsupported architecture" "$work/arch" "unsupported platform \`Linux/S390X\`" \
  --version "$version" --os Linux --arch S390X
expect_refused "unsupported OS" "$work/os" "unsupported platform \`FreeBSD/X64\`" \
  --version "$version" --os FreeBSD --arch X64
expect_refused "release without this platform" "$work/noplat" "has no archive for" --version 8.0.0
expect_refused "not a version" "$work/bad" "not a release version" --version latest
if IDPRUNE_DOWNLOAD_URL="http://example.com/x" IDPRUNE_CHECKSUMS="$work/checksums.tsv" \
  "$script" --version "$version" --dir "$work/plain" > "$work/out" 2>&1; then
  fail "plain http to a non-loopback host was accepted"
fi
grep -q "neither https nor loopback http" "$work/out" || fail "plain http: $(cat "$work/out")"
echo "ok: plain http off loopback is refused"
echo "install script: all checks passed"
