#!/usr/bin/env bash
# Regenerates Apache Thrift's peer of the Thrift codec and RPC benchmarks: feed.thrift ->
# gen-apache/feed_types.js and Echo.js (the Thrift compiler's `js:node,es6` generator, CommonJS
# requiring 'thrift'; es6 because the default output's services need the Q promise library, which
# the thrift package no longer exports).
#
# The output is committed, so `npm run bench:thrift` does not need the compiler. Run this after
# editing feed.thrift. Needs the Thrift compiler (THRIFT, default: thrift on PATH; 0.17 made the
# committed files).
#
# One line of each file is changed after generation: the generated code requires 'node-int64', a dependency of
# the thrift package that npm need not hoist to where bench/ can resolve it. The file never uses
# it, and thrift re-exports the same class as thrift.Int64, so the require points there instead.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
thrift="${THRIFT:-thrift}"
out="$here/gen-apache"

rm -rf "$out"
mkdir -p "$out"
"$thrift" --gen js:node,es6 -out "$out" "$here/feed.thrift"
for f in "$out"/*.js; do
  sed -i "s|^const Int64 = require('node-int64');\$|const Int64 = thrift.Int64; // was require('node-int64'): see bench/codec/thrift/gen.sh|" "$f"
  grep -q "^const Int64 = thrift.Int64;" "$f" || { echo "gen.sh: the node-int64 require was not found in $f; update the sed" >&2; exit 1; }
done
# The repository's package.json says "type": "module"; the generated code is CommonJS.
echo '{ "type": "commonjs" }' >"$out/package.json"

echo "generated bench/codec/thrift/gen-apache/feed_types.js and Echo.js"
