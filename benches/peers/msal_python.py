"""The peer workload through MSAL Python: prints one JSON object of measurements.

Usage: python msal_python.py TENANT_JSON EXPIRY_TENANT_JSON
(the lines examples/fake_tenant printed; the second tenant issues 303-second tokens, which MSAL
treats as expired 3 s after they arrive: it renews tokens 5 minutes before their expiry)
"""
import gc
import json
import os
import statistics
import sys
import threading
import time
import tracemalloc
import urllib.request
import ssl

import msal
import requests

info = json.loads(open(sys.argv[1]).read())
expiry = json.loads(open(sys.argv[2]).read())
base = info["base_url"]
ca = info["ca_file"]
SIGNIN = f"{base}{info['tenant']}.onmicrosoft.com/{info['signin_policy']}"
ROPC = f"{base}{info['tenant']}.onmicrosoft.com/{info['ropc_policy']}"
EXPIRY_SIGNIN = f"{expiry['base_url']}{info['tenant']}.onmicrosoft.com/{info['signin_policy']}"
CC_SCOPES = [info["api_default_scope"]]
USER_SCOPES = [info["api_read_scope"]]
BATCHES, BATCH = 200, 100  # p50/p99 over batches: a clock read per call would cost more than some calls
ssl_context = ssl.create_default_context(cafile=ca)
# requests reads its CA bundle from here whenever a call says verify=True (MSAL's default).
os.environ["REQUESTS_CA_BUNDLE"] = ca


def admin(path, method="GET", tenant_base=base):
    request = urllib.request.Request(f"{tenant_base}_fake/{path}", method=method)
    with urllib.request.urlopen(request, context=ssl_context) as response:
        return json.loads(response.read())


def session():
    s = requests.Session()
    s.verify = ca
    return s


def confidential(client_id=info["confidential_client_id"], authority=SIGNIN, **kwargs):
    # A localhost B2C authority: no instance discovery against login.microsoftonline.com.
    return msal.ConfidentialClientApplication(
        client_id,
        client_credential=info["client_secret"],
        authority=authority,
        validate_authority=False,
        instance_discovery=False,
        http_client=kwargs.pop("http_client", None) or session(),
        **kwargs,
    )


def percentiles(samples):
    samples.sort()
    return samples[len(samples) // 2], samples[int(len(samples) * 0.99)]


def timed_calls(call):
    samples = []
    for _ in range(BATCHES):
        start = time.perf_counter_ns()
        for _ in range(BATCH):
            call()
        samples.append((time.perf_counter_ns() - start) / BATCH)
    return percentiles(samples)


out = {"library": f"MSAL Python {msal.__version__}"}

# Cold: a new application object to the first token, in-process (metadata included).
start = time.perf_counter()
app = confidential()
first = app.acquire_token_for_client(CC_SCOPES)
out["cold_acquire_ms"] = (time.perf_counter() - start) * 1000
assert "access_token" in first, first

# Cached client credentials.
assert app.acquire_token_for_client(CC_SCOPES)["token_source"] == "cache"
out["cached_cc_p50_ns"], out["cached_cc_p99_ns"] = timed_calls(lambda: app.acquire_token_for_client(CC_SCOPES))

# Cached silent acquire for a user signed in with ROPC. MSAL asks https://{host}/common/userrealm
# first and remembers hosts that answer 404, as b2clogin.com does; it drops the port, so on
# localhost it would ask port 443: remember the 404 for it up front.
msal.authority.Authority._domains_without_user_realm_discovery.add("localhost")
public = msal.PublicClientApplication(
    info["public_client_id"], authority=ROPC, validate_authority=False, instance_discovery=False, http_client=session()
)
signed_in = public.acquire_token_by_username_password(info["username"], info["password"], scopes=USER_SCOPES)
assert "access_token" in signed_in, signed_in
account = public.get_accounts()[0]
assert public.acquire_token_silent(USER_SCOPES, account=account)["token_source"] == "cache"
out["cached_silent_p50_ns"], out["cached_silent_p99_ns"] = timed_calls(
    lambda: public.acquire_token_silent(USER_SCOPES, account=account)
)

# N concurrent callers arrive when the cached token has expired: how many token requests
# reach the tenant.
N = 1000
crowd = confidential(authority=EXPIRY_SIGNIN)
assert "access_token" in crowd.acquire_token_for_client(CC_SCOPES)
admin("reset", "POST", expiry["base_url"])  # from here on, every request counts
time.sleep(expiry["lifetime_secs"] - 300 + 1)
barrier = threading.Barrier(N)
errors = []


def caller():
    barrier.wait()
    result = crowd.acquire_token_for_client(CC_SCOPES)
    if "access_token" not in result:
        errors.append(result)


threads = [threading.Thread(target=caller) for _ in range(N)]
for t in threads:
    t.start()
for t in threads:
    t.join()
assert not errors, errors[:1]
out["concurrent_callers"] = N
out["concurrent_requests"] = admin("stats", tenant_base=expiry["base_url"])["token_requests"]

# Memory per cached token: 1,000 applications (one per client ID) sharing one token cache and
# one HTTP session each cache a token; then the tokens are removed. The difference in memory
# still allocated (tracemalloc, after a full collection) is what the cached tokens hold.
shared_cache = msal.SerializableTokenCache()
shared_session = session()
ids = [f"00000000-0000-4000-8000-{n:012}" for n in range(info["extra_clients"])]
tracemalloc.start()
apps = [confidential(client_id, token_cache=shared_cache, http_client=shared_session) for client_id in ids]
for a in apps:
    assert "access_token" in a.acquire_token_for_client(CC_SCOPES)
gc.collect()
with_tokens = tracemalloc.get_traced_memory()[0]
for a in apps:
    a.remove_tokens_for_client()
gc.collect()
without_tokens = tracemalloc.get_traced_memory()[0]
tracemalloc.stop()
out["memory_tokens"] = len(apps)
out["memory_per_token_bytes"] = (with_tokens - without_tokens) / len(apps)

print(json.dumps(out))
