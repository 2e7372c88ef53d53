#!/usr/bin/env bash
# Regenerates gen-py/ from interop.thrift with the Apache Thrift compiler (0.17, Debian's
# thrift-compiler). Only needed after editing interop.thrift: the output is committed, so
# running the interop tests does not need the compiler.
set -euo pipefail
cd "$(dirname "$0")"
command -v thrift >/dev/null 2>&1 || { echo "regen.sh: the thrift compiler is not installed (apt-get install thrift-compiler)" >&2; exit 1; }
rm -rf gen-py
mkdir gen-py
thrift --gen py -out gen-py interop.thrift
# The compiler writes a runnable remote-call script per service; the peers do not use it.
rm -f gen-py/meridian_interop/*-remote
echo "regen.sh: $(thrift --version) wrote gen-py/"
