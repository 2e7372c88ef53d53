#!/usr/bin/env bash
# Encodes the golden vectors: every test/codec/golden/*.txtpb (text format) into the .bin beside
# it, with protoc as the reference encoder. The .bin files are committed, so the tests do not
# need protoc; run this after adding or editing a .txtpb or a .proto under test/protos.
#
# Each .txtpb names its schema in two header comments (the txtpb convention):
#   # proto-file: catalog.proto
#   # proto-message: conformance.Order
# Maps are written sorted by key (--deterministic_output), so the vectors are reproducible.
# Needs protoc (PROTOC, default: protoc on PATH) with the well-known .proto files beside it
# (Debian: protobuf-compiler and libprotobuf-dev).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
protos="$(cd "$here/../../protos" && pwd)"
protoc="${PROTOC:-protoc}"

# All the test protos are passed, so an Any in text form can name any of their types.
mapfile -t all < <(cd "$protos" && find . -name '*.proto' | sed 's|^\./||' | LC_ALL=C sort)

count=0
for txt in "$here"/*.txtpb; do
  file="$(sed -n 's/^# proto-file: *//p' "$txt" | head -n 1)"
  message="$(sed -n 's/^# proto-message: *//p' "$txt" | head -n 1)"
  if [ -z "$file" ] || [ -z "$message" ]; then
    echo "encode.sh: $txt needs '# proto-file:' and '# proto-message:' header lines" >&2
    exit 1
  fi
  (cd "$protos" && "$protoc" -I . --deterministic_output --encode="$message" "${all[@]}") \
    <"$txt" >"${txt%.txtpb}.bin"
  count=$((count + 1))
done
echo "encoded $count golden vectors into $(basename "$here")/*.bin"
