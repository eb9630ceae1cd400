#!/usr/bin/env bash
# Writes the shell completions and the man page that every release archive carries (dist's
# `include` in dist-workspace.toml) from a built idprune, or with --check fails when the
# committed ones differ from what that binary prints (.ci/run: a new flag without new assets).
#
#   install/assets.sh target/release/idprune [--check]
set -euo pipefail
bin=${1:?usage: install/assets.sh PATH-TO-IDPRUNE [--check]}
check=${2:-}
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)/assets"
mkdir -p "$root/completions" "$root/man"
stale=0
emit() { # FILE COMMAND...
  local file=$1
  shift
  if [ "$check" = --check ]; then
    "$bin" "$@" | cmp -s - "$root/$file" || { echo "assets/$file is stale: run install/assets.sh $bin" >&2; stale=1; }
  else
    "$bin" "$@" > "$root/$file"
  fi
}
emit completions/idprune.bash completions bash
emit completions/_idprune completions zsh
emit completions/idprune.fish completions fish
emit completions/_idprune.ps1 completions powershell
emit man/idprune.1 man
exit "$stale"
