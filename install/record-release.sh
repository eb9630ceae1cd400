#!/usr/bin/env bash
# The release step that gives the Action its sha256 rows: after the release workflow published
# vX.Y.Z, downloads its archives, verifies each one's GitHub attestation, and appends
# VERSION<TAB>TARGET<TAB>SHA256 rows to install/checksums.tsv. Then commit the table, and pin
# the example workflow's `uses:` to that commit (see "Releasing" in README.md).
#
#   install/record-release.sh v0.2.0                  # from the published release (needs gh)
#   install/record-release.sh v0.2.0 --archives DIR   # from archives at hand (tests)
#   install/record-release.sh v0.2.0 --table FILE     # another table (tests)
set -euo pipefail

readonly REPO="idprune/idprune"
die() {
  printf 'error: %s\n' "$*" >&2
  exit 1
}

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
tag=${1:-}
[[ "$tag" =~ ^v[0-9]+\.[0-9]+\.[0-9]+(-[0-9A-Za-z.]+)?$ ]] \
  || die "first argument \`$tag\` is not a release tag; give one like \`v0.2.0\`"
shift
version=${tag#v}
archives=""
table="$here/checksums.tsv"
while [ $# -gt 0 ]; do
  case "$1" in
    --archives) archives=${2-}; shift 2 ;;
    --table) table=${2-}; shift 2 ;;
    *) die "unknown argument \`$1\`" ;;
  esac
done

if awk -v v="$version" '!/^#/ && $1 == v { found = 1 } END { exit !found }' "$table"; then
  die "\`$table\` already has rows for \`$version\`; rows are never rewritten"
fi

if [ -z "$archives" ]; then
  command -v gh >/dev/null || die "\`gh\` is not on PATH; install it, or pass \`--archives DIR\`"
  archives=$(mktemp -d)
  trap 'rm -rf "$archives"' EXIT
  gh release download "$tag" --repo "$REPO" --dir "$archives" \
    --pattern 'idprune-*.tar.gz' --pattern 'idprune-*.zip'
  for f in "$archives"/idprune-*; do
    gh attestation verify "$f" --repo "$REPO" >/dev/null \
      || die "\`gh attestation verify\` refused \`$(basename "$f")\` of \`$tag\`; record nothing and investigate"
  done
fi

rows=0
tmp="$table.tmp"
cp "$table" "$tmp"
for f in "$archives"/idprune-*.tar.gz "$archives"/idprune-*.zip; do
  [ -f "$f" ] || continue
  name=$(basename "$f")
  target=${name#idprune-}
  target=${target%.tar.gz}
  target=${target%.zip}
  sha=$(sha256sum "$f" | cut -d' ' -f1)
  printf '%s\t%s\t%s\n' "$version" "$target" "$sha" >> "$tmp"
  rows=$((rows + 1))
done
[ "$rows" -gt 0 ] || { rm -f "$tmp"; die "no \`idprune-TARGET.tar.gz\` or \`.zip\` archive in \`$archives\`"; }
mv "$tmp" "$table"
echo "recorded $rows archives of $tag in $table" >&2
