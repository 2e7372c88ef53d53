#!/usr/bin/env bash
# Regenerates the @bufbuild/protobuf peer of the codec benchmark: proto/feed.proto -> es/feed_pb.ts.
#
# The output is committed, so `npm run bench:codec` does not need protoc. Run this after editing
# proto/feed.proto. Needs protoc (PROTOC, default: protoc on PATH) and the protoc-gen-es dev dep.
#
# No jstype copy of the proto: @bufbuild/protobuf v2 has no number representation for 64-bit
# integers. Its registry reads only `jstype == JS_STRING` (string); JS_NORMAL and JS_NUMBER both
# give bigint, and protoc-gen-es has no plugin option for it either. So this peer gets bigint, like
# Meridian's default, and is generated from the benchmark's proto as it is.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
protoc="${PROTOC:-protoc}"
plugin="$root/node_modules/.bin/protoc-gen-es"
out="$here/es"

mkdir -p "$out"
rm -f "$out"/*_pb.ts

"$protoc" \
  --plugin="protoc-gen-es=$plugin" \
  --proto_path="$here/proto" \
  --es_out="$out" \
  --es_opt=target=ts,import_extension=js \
  "$here/proto/feed.proto"

echo "generated $(cd "$root" && ls bench/codec/es/*_pb.ts)"
