#!/usr/bin/env bash
# Installs one idprune release archive, checked against the sha256 table kept beside this script
# (install/checksums.tsv, part of the Action's own tree at the ref a workflow pins), never against
# a checksum file fetched next to the archive. Used by action.yml; runs the same outside GitHub:
#
#   install/install.sh --version 0.2.0 [--os Linux|macOS|Windows] [--arch X64|ARM64] [--dir DIR]
#
# Fails closed, saying which: an unknown version, an unsupported platform, a download that fails,
# a sha256 that differs, an attestation `gh` refuses. Nothing is installed unless every check passed.
#
# Environment:
#   IDPRUNE_DOWNLOAD_URL  base of the release downloads (default: the project's GitHub releases);
#                         the archive is fetched from BASE/vVERSION/idprune-TARGET.EXT. Plain http
#                         is accepted only on loopback (the tests' server).
#   IDPRUNE_CHECKSUMS     the table to check against (default: checksums.tsv beside this script);
#                         the tests inject their own.
#   IDPRUNE_ATTESTATION   `auto` (default: verify with `gh attestation verify` when `gh` is on
#                         PATH and the download is the project's own), `require` or `off`.
set -euo pipefail

readonly REPO="idprune/idprune"
readonly DEFAULT_DOWNLOAD_URL="https://github.com/${REPO}/releases/download"

die() {
  printf 'error: %s\n' "$*" >&2
  exit 1
}

script_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
version=""
os=""
arch=""
dir=""
while [ $# -gt 0 ]; do
  case "$1" in
    --version) version=${2-}; shift 2 ;;
    --os) os=${2-}; shift 2 ;;
    --arch) arch=${2-}; shift 2 ;;
    --dir) dir=${2-}; shift 2 ;;
    -h | --help) sed -n '2,20p' "$0"; exit 0 ;;
    *) die "unknown argument \`$1\`; run \`$0 --help\`" ;;
  esac
done

version=${version#v}
[ -n "$version" ] || die "no \`--version\` given; pass the release to install, e.g. \`--version 0.2.0\`"
[[ "$version" =~ ^[0-9]+\.[0-9]+\.[0-9]+(-[0-9A-Za-z.]+)?$ ]] \
  || die "version \`$version\` is not a release version; give one like \`0.2.0\`"

# The runner's names (runner.os, runner.arch) or, outside GitHub, uname's.
[ -n "$os" ] || os=$(uname -s)
[ -n "$arch" ] || arch=$(uname -m)
case "$os" in
  Linux | linux) os=Linux ;;
  macOS | Darwin | darwin) os=macOS ;;
  Windows | MINGW* | MSYS* | CYGWIN*) os=Windows ;;
esac
case "$arch" in
  X64 | x86_64 | amd64) arch=X64 ;;
  ARM64 | aarch64 | arm64) arch=ARM64 ;;
esac
# Linux x86_64 gets the static musl build: it runs on any distribution and in any container.
case "$os/$arch" in
  Linux/X64) target=x86_64-unknown-linux-musl; ext=tar.gz ;;
  Linux/ARM64) target=aarch64-unknown-linux-gnu; ext=tar.gz ;;
  macOS/X64) target=x86_64-apple-darwin; ext=tar.gz ;;
  macOS/ARM64) target=aarch64-apple-darwin; ext=tar.gz ;;
  Windows/X64) target=x86_64-pc-windows-msvc; ext=zip ;;
  *) die "unsupported platform \`$os/$arch\`: idprune releases run on Linux X64/ARM64, macOS X64/ARM64 and Windows X64; elsewhere run \`cargo install idprune --locked\`" ;;
esac

table=${IDPRUNE_CHECKSUMS:-$script_dir/checksums.tsv}
[ -r "$table" ] || die "checksum table \`$table\` cannot be read; restore install/checksums.tsv from the Action's ref"
# Rows: VERSION<TAB>TARGET<TAB>SHA256; `#` starts a comment.
expected=$(awk -v v="$version" -v t="$target" '!/^#/ && $1 == v && $2 == t { print $3 }' "$table")
if [ -z "$expected" ]; then
  if awk -v v="$version" '!/^#/ && $1 == v { found = 1 } END { exit !found }' "$table"; then
    die "release \`$version\` has no archive for \`$target\` ($os/$arch) in \`$table\`; run \`cargo install idprune --locked --version $version\`"
  fi
  known=$(awk '!/^#/ && NF { print $1 }' "$table" | sort -u | paste -sd, - | sed 's/,/, /g')
  die "unknown version \`$version\`: this Action's checksum table lists ${known:-no release yet}; pin an Action ref whose install/checksums.tsv lists it"
fi
[[ "$expected" =~ ^[0-9a-f]{64}$ ]] || die "checksum table \`$table\` has a malformed sha256 for \`$version\` \`$target\`; fix the row"

base=${IDPRUNE_DOWNLOAD_URL:-$DEFAULT_DOWNLOAD_URL}
base=${base%/}
case "$base" in
  https://*) proto='=https' ;;
  http://127.0.0.1[:/]* | http://localhost[:/]* | http://\[::1\][:/]*) proto='=http' ;;
  *) die "download URL \`$base\` is neither https nor loopback http; set \`IDPRUNE_DOWNLOAD_URL\` to an https URL" ;;
esac
archive="idprune-$target.$ext"
url="$base/v$version/$archive"

work=$(mktemp -d "${RUNNER_TEMP:-${TMPDIR:-/tmp}}/idprune-install.XXXXXX")
trap 'rm -rf "$work"' EXIT

curl --fail --silent --show-error --location --proto "$proto" --proto-redir "$proto" \
  --retry 3 --retry-delay 2 --connect-timeout 20 --output "$work/$archive" "$url" \
  || die "downloading \`$url\` failed; check the version and the network (or \`IDPRUNE_DOWNLOAD_URL\`)"

if command -v sha256sum >/dev/null; then
  actual=$(sha256sum "$work/$archive" | cut -d' ' -f1)
else
  actual=$(shasum -a 256 "$work/$archive" | cut -d' ' -f1)
fi
[ "$actual" = "$expected" ] \
  || die "sha256 mismatch for \`$archive\` of \`$version\`: expected $expected (the Action's table), got $actual; nothing was installed"

attestation=${IDPRUNE_ATTESTATION:-auto}
case "$attestation" in
  off) ;;
  auto | require)
    if command -v gh >/dev/null && [ "$base" = "$DEFAULT_DOWNLOAD_URL" ]; then
      gh attestation verify "$work/$archive" --repo "$REPO" >/dev/null \
        || die "\`gh attestation verify\` refused \`$archive\` of \`$version\`; nothing was installed"
      echo "attestation of $archive verified (built by $REPO's release workflow)" >&2
    elif [ "$attestation" = require ]; then
      die "attestation required but \`gh\` is not on PATH or the download is not from \`$DEFAULT_DOWNLOAD_URL\`; install gh or set \`IDPRUNE_ATTESTATION=auto\`"
    fi
    ;;
  *) die "\`IDPRUNE_ATTESTATION\` is \`$attestation\`; use \`auto\`, \`require\` or \`off\`" ;;
esac

mkdir "$work/x"
case "$ext" in
  tar.gz) tar -xzf "$work/$archive" -C "$work/x" ;;
  zip) unzip -q "$work/$archive" -d "$work/x" ;;
esac
exe=idprune
[ "$os" = Windows ] && exe=idprune.exe
# dist's archives hold the binary under a directory named after the archive, or at the top.
bin=$(find "$work/x" -maxdepth 2 -type f -name "$exe" | head -n 1)
[ -n "$bin" ] || die "archive \`$archive\` holds no \`$exe\`; the release is malformed, report it"

dir=${dir:-${IDPRUNE_INSTALL_DIR:-$HOME/.local/bin}}
mkdir -p "$dir"
# Into place with a rename, so a reader never sees half a binary.
cp "$bin" "$dir/.$exe.tmp"
chmod 755 "$dir/.$exe.tmp"
mv -f "$dir/.$exe.tmp" "$dir/$exe"
echo "installed idprune $version ($target) to $dir/$exe" >&2
