#!/usr/bin/env bash
# The MSAL comparison in one command: installs MSAL Python (PyPI `msal`) and msal-node (npm
# `@azure/msal-node`) into a temp dir, starts fake tenants over HTTPS (examples/fake_tenant,
# each with a CA of its own), runs the same workload through the three libraries, and prints
# one table with ratios. Needs only the Rust toolchain, Python 3 and Node.js.
#
#   bash benches/peers/run.sh
#
# Exits non-zero if a peer fails or this crate sends more than one request for the crowd.
set -euo pipefail
cd "$(dirname "$0")/../.."
root=$(pwd)
MSAL_PYTHON_VERSION=${MSAL_PYTHON_VERSION:-1.39.0}
MSAL_NODE_VERSION=${MSAL_NODE_VERSION:-7.2.3}

for tool in cargo python3 node npm; do
  command -v "$tool" >/dev/null || { echo "benches/peers/run.sh needs $tool" >&2; exit 1; }
done
work=$(mktemp -d)
cleanup() {
  kill $(jobs -p) 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

echo "== installing MSAL Python $MSAL_PYTHON_VERSION and msal-node $MSAL_NODE_VERSION into $work"
python3 -m venv "$work/venv"
"$work/venv/bin/pip" install -q --disable-pip-version-check "msal==$MSAL_PYTHON_VERSION"
(cd "$work" && npm init -y >/dev/null && npm install --silent --no-audit --no-fund "@azure/msal-node@$MSAL_NODE_VERSION")

echo "== building this crate's side (release)"
cargo build -q --release --locked --features cli,test-tenant --bin b2c-token --example fake_tenant --example peer_workload
# Where cargo put them: CARGO_TARGET_DIR (or the config's build.target-dir) wins over ./target.
release="$(cargo metadata --format-version 1 --no-deps | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')/release"

# Three tenants: the main one (1,000 extra clients for the memory row), one issuing 303-second
# tokens (MSAL renews 5 minutes early, so they are expired for MSAL 3 s after they arrive),
# one issuing 3-second tokens (expired for this crate after 3 s).
start_tenant() { # name, args...
  local name=$1; shift
  "$release/examples/fake_tenant" --tls --ca-file "$work/$name-ca.pem" "$@" >"$work/$name.raw" &
  for _ in $(seq 100); do [ -s "$work/$name.raw" ] && return 0; sleep 0.1; done
  echo "the fake tenant $name did not start" >&2; exit 1
}
start_tenant main --clients 1000
start_tenant expiry-msal --lifetime 303
start_tenant expiry-rust --lifetime 3
cat "$work"/*-ca.pem >"$work/ca.pem"
for name in main expiry-msal expiry-rust; do
  python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); d["ca_file"]=sys.argv[2]; print(json.dumps(d))' \
    "$work/$name.raw" "$work/ca.pem" >"$work/$name.json"
done

echo "== MSAL Python"
REQUESTS_CA_BUNDLE="$work/ca.pem" "$work/venv/bin/python" benches/peers/msal_python.py \
  "$work/main.json" "$work/expiry-msal.json" >"$work/python.out"
echo "== msal-node"
cp benches/peers/msal_node.mjs "$work/"
(cd "$work" && NODE_EXTRA_CA_CERTS="$work/ca.pem" node --expose-gc msal_node.mjs main.json expiry-msal.json) >"$work/node.out"
echo "== b2c-token"
"$release/examples/peer_workload" "$work/main.json" "$work/expiry-rust.json" >"$work/rust.out"

echo "== fresh processes, and the table"
python3 benches/peers/table.py --work "$work" --cli "$release/b2c-token"
