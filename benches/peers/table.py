"""Times a whole fresh process per library (10 runs each, median), then prints the comparison
table from the three runners' JSON, with this crate's advantage as a ratio in every row.
Exits non-zero if a runner's output is missing or this crate sent more than one request for
the crowd. Called by benches/peers/run.sh."""
import argparse
import json
import os
import statistics
import subprocess
import sys
import time

parser = argparse.ArgumentParser()
parser.add_argument("--work", required=True)
parser.add_argument("--cli", required=True)
args = parser.parse_args()
work = args.work


def load(name):
    path = os.path.join(work, name)
    try:
        return json.loads(open(path).read().strip().splitlines()[-1])
    except (OSError, IndexError, ValueError) as e:
        sys.exit(f"{name}: no result ({e})")


rust, python, node = load("rust.out"), load("python.out"), load("node.out")
info = json.load(open(os.path.join(work, "main.json")))
ca = os.path.join(work, "ca.pem")
authority = f"{info['base_url']}{info['tenant']}.onmicrosoft.com/{info['signin_policy']}"
scope = info["api_default_scope"]
client_id = info["confidential_client_id"]
env = dict(os.environ, B2C_CLIENT_SECRET=info["client_secret"], REQUESTS_CA_BUNDLE=ca, NODE_EXTRA_CA_CERTS=ca)

commands = {
    "rust": [args.cli, "client-credentials", "--tenant", info["tenant"], "--policy", info["signin_policy"],
             "--domain", info["base_url"], "--client-id", client_id, "--scope", scope, "--ca-file", ca, "--ca-only"],
    "python": [os.path.join(work, "venv", "bin", "python"), "-c",
               "import msal, os, sys\n"
               f"app = msal.ConfidentialClientApplication({client_id!r}, client_credential=os.environ['B2C_CLIENT_SECRET'],"
               f" authority={authority!r}, validate_authority=False, instance_discovery=False)\n"
               f"sys.exit(0 if 'access_token' in app.acquire_token_for_client([{scope!r}]) else 1)"],
    "node": ["node", "--input-type=module", "-e",
             "import * as msal from '@azure/msal-node';\n"
             f"const app = new msal.ConfidentialClientApplication({{auth: {{clientId: {json.dumps(client_id)},"
             f" clientSecret: process.env.B2C_CLIENT_SECRET, authority: {json.dumps(authority)},"
             f" knownAuthorities: [new URL({json.dumps(authority)}).host]}}}});\n"
             f"const r = await app.acquireTokenByClientCredential({{scopes: [{json.dumps(scope)}]}});\n"
             "process.exit(r.accessToken ? 0 : 1);"],
}
fresh = {}
for name, command in commands.items():
    runs = []
    for _ in range(10):
        start = time.perf_counter()
        done = subprocess.run(command, env=env, cwd=work, capture_output=True)
        runs.append((time.perf_counter() - start) * 1000)
        if done.returncode != 0:
            sys.exit(f"fresh process ({name}) failed: {done.stderr.decode(errors='replace')[-2000:]}")
    fresh[name] = statistics.median(runs)
rust["fresh_process_ms"], python["fresh_process_ms"], node["fresh_process_ms"] = fresh["rust"], fresh["python"], fresh["node"]


def fmt(value, unit):
    if unit == "ns":
        return f"{value / 1000:.2f} µs" if value >= 1000 else f"{value:.0f} ns"
    if unit == "ms":
        return f"{value:.1f} ms"
    if unit == "B":
        return f"{value:,.0f} B"
    return f"{value:,.0f}"


rows = [
    ("cached client-credentials acquire, p50", "cached_cc_p50_ns", "ns"),
    ("cached client-credentials acquire, p99", "cached_cc_p99_ns", "ns"),
    ("cached user (silent) acquire, p50", "cached_silent_p50_ns", "ns"),
    ("cached user (silent) acquire, p99", "cached_silent_p99_ns", "ns"),
    ("first acquire in-process (cold)", "cold_acquire_ms", "ms"),
    ("fresh process to a token (CLI / python -c / node -e)", "fresh_process_ms", "ms"),
    (f"token requests for {rust['concurrent_callers']:,} concurrent callers at expiry", "concurrent_requests", "n"),
    ("memory per cached token", "memory_per_token_bytes", "B"),
]
print()
print(f"| workload | {rust['library']} | {python['library']} | {node['library']} | vs MSAL Python | vs msal-node |")
print("|---|---|---|---|---|---|")
for label, key, unit in rows:
    r, p, n = rust[key], python[key], node[key]
    ratio = lambda peer: f"{peer / r:,.1f}×" if r > 0 else "n/a"
    print(f"| {label} | {fmt(r, unit)} | {fmt(p, unit)} | {fmt(n, unit)} | {ratio(p)} | {ratio(n)} |")
print()
print("Ratios: the peer's figure divided by this crate's (higher is better for this crate).")
print(f"This crate with the key looked up on every call (as MSAL's acquire does), instead of a kept TokenSource: "
      f"client credentials p50 {fmt(rust['cached_cc_lookup_p50_ns'], 'ns')} "
      f"({python['cached_cc_p50_ns'] / rust['cached_cc_lookup_p50_ns']:,.0f}× vs MSAL Python), "
      f"user p50 {fmt(rust['cached_silent_lookup_p50_ns'], 'ns')}.")
print(json.dumps({"b2c-token": rust, "msal-python": python, "msal-node": node}))
if rust["concurrent_requests"] != 1:
    sys.exit(f"this crate sent {rust['concurrent_requests']} token requests for the crowd, not 1")
