#!/usr/bin/env bash
# Installs everything Meridian's tests and demo need on a fresh Debian machine, then the npm
# dependencies. Idempotent: a second run installs nothing.
#   system tools: protoc (Debian's protobuf-compiler, with the well-known .proto files),
#   etcd (etcd-server) and nats-server, which the integration tests start themselves on
#   127.0.0.1 with temporary data folders (the packages' own services are not used); openssl,
#   which makes the throwaway certificates of the TLS tests and benchmarks; Debian's python3-thrift
#   (Apache Thrift's Python library, for /usr/bin/python3) and python3-six, for the Python peer of
#   the Thrift interop tests (test/thrift/interop/; its generated code is committed, so no thrift
#   compiler).
set -euo pipefail
cd "$(dirname "$0")/.."

need=()
command -v protoc >/dev/null 2>&1 || need+=(protobuf-compiler)
[ -f /usr/include/google/protobuf/timestamp.proto ] || need+=(libprotobuf-dev)
command -v etcd >/dev/null 2>&1 || need+=(etcd-server)
command -v nats-server >/dev/null 2>&1 || [ -x /usr/sbin/nats-server ] || need+=(nats-server)
command -v openssl >/dev/null 2>&1 || need+=(openssl)
/usr/bin/python3 -c "import thrift" >/dev/null 2>&1 || need+=(python3-thrift)
# python3-thrift 0.17 imports six (thrift.protocol.TProtocol, thrift.server.TServer) without
# depending on python3-six.
/usr/bin/python3 -c "import six" >/dev/null 2>&1 || need+=(python3-six)

if [ ${#need[@]} -gt 0 ]; then
  echo "setup: installing ${need[*]}"
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need[@]}" >/dev/null
fi

# npm ci when node_modules is missing or older than the lock file.
if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  echo "setup: npm ci"
  npm ci --no-audit --no-fund
fi
