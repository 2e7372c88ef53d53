#!/usr/bin/env bash
# The main job: the cross-region demo cluster (three regions on this machine, the embedded
# registry by default), set-up included. Extra arguments go to the demo, e.g.
#   bash scripts/demo.sh --registry etcd --transport grpc --duration 90
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
npm run --silent demo -- "$@"
