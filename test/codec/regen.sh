#!/usr/bin/env bash
# Regenerates the committed generated code of the codec conformance tests from test/protos:
#   test/codec/gen/          int64 family as bigint (the default)
#   test/codec/gen-number/   --int64 number
# Run it after changing test/protos or the generator; regen.test.ts fails while the committed
# files differ from what the generator produces. With an argument, writes under that folder
# instead (the test uses a temporary one).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
out="${1:-$here}"
cd "$root"

mapfile -t protos < <(find test/protos -name '*.proto' | LC_ALL=C sort)

generate() {
  local dir="$out/$1"
  shift
  rm -rf "$dir"
  mkdir -p "$dir"
  node --conditions=meridian-source --import tsx codegen/cli.ts gen "${protos[@]}" -I test/protos --out "$dir" "$@"
}

generate gen
generate gen-number --int64 number
echo "regenerated $out/gen and $out/gen-number from ${#protos[@]} files"
