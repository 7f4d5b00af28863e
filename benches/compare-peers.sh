#!/usr/bin/env bash
# Times `repave build` against umoci, pigz, gzip and plain tar on one generated static site,
# using the shared comparison script beside this repository (../shared/bench). Builds repave
# in release mode first. Extra arguments go to the script (--files N --blob-mib M --runs R).
# Needs umoci and pigz (apt-get install -y umoci pigz).
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
script="$repo/../shared/bench/compare-peers.py"
if [[ ! -f "$script" ]]; then
  echo "compare-peers.sh: $script not found: it lives in the shared folder beside the repository" >&2
  exit 1
fi
cargo build --release --manifest-path "$repo/Cargo.toml"
exec python3 "$script" --repave "$repo/target/release/repave" "$@"
