#!/usr/bin/env bash
# Regenerates Apache Thrift's peer of the Thrift codec benchmark: feed.thrift -> gen-apache/feed_types.js
# (the Thrift compiler's `js:node` generator, CommonJS requiring 'thrift').
#
# The output is committed, so `npm run bench:thrift` does not need the compiler. Run this after
# editing feed.thrift. Needs the Thrift compiler (THRIFT, default: thrift on PATH; 0.17 made the
# committed file).
#
# One line is changed after generation: the generated code requires 'node-int64', a dependency of
# the thrift package that npm need not hoist to where bench/ can resolve it. The file never uses
# it, and thrift re-exports the same class as thrift.Int64, so the require points there instead.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
thrift="${THRIFT:-thrift}"
out="$here/gen-apache"

rm -rf "$out"
mkdir -p "$out"
"$thrift" --gen js:node -out "$out" "$here/feed.thrift"
sed -i "s|^var Int64 = require('node-int64');\$|var Int64 = thrift.Int64; // was require('node-int64'): see bench/codec/thrift/gen.sh|" "$out/feed_types.js"
grep -q "^var Int64 = thrift.Int64;" "$out/feed_types.js" || { echo "gen.sh: the node-int64 require was not found; update the sed" >&2; exit 1; }
# The repository's package.json says "type": "module"; the generated code is CommonJS.
echo '{ "type": "commonjs" }' >"$out/package.json"

echo "generated bench/codec/thrift/gen-apache/feed_types.js"
