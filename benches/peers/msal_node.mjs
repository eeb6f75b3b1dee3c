// The peer workload through msal-node: prints one JSON object of measurements.
// Usage: NODE_EXTRA_CA_CERTS=ca.pem node --expose-gc msal_node.mjs TENANT_JSON EXPIRY_TENANT_JSON
// (the second tenant issues 303-second tokens, which msal-node treats as expired 3 s after
// they arrive: it renews tokens 5 minutes before their expiry)
import { readFileSync } from "node:fs";
import * as msal from "@azure/msal-node";

const info = JSON.parse(readFileSync(process.argv[2], "utf8"));
const expiry = JSON.parse(readFileSync(process.argv[3], "utf8"));
const base = info.base_url;
const host = new URL(base).host;
const SIGNIN = `${base}${info.tenant}.onmicrosoft.com/${info.signin_policy}`;
const ROPC = `${base}${info.tenant}.onmicrosoft.com/${info.ropc_policy}`;
const EXPIRY_SIGNIN = `${expiry.base_url}${info.tenant}.onmicrosoft.com/${info.signin_policy}`;
const CC_SCOPES = [info.api_default_scope];
const USER_SCOPES = [info.api_read_scope];
const BATCHES = 200, BATCH = 100; // p50/p99 over batches: a clock read per call would cost more than some calls
const pkg = JSON.parse(readFileSync(new URL("./node_modules/@azure/msal-node/package.json", `file://${process.cwd()}/`), "utf8"));

async function admin(path, method = "GET", tenantBase = base) {
  const response = await fetch(`${tenantBase}_fake/${path}`, { method });
  return response.json();
}

// A localhost B2C authority: declared known, so msal-node does no instance discovery.
const confidential = (clientId = info.confidential_client_id, authority = SIGNIN) =>
  new msal.ConfidentialClientApplication({
    auth: { clientId, clientSecret: info.client_secret, authority, knownAuthorities: [new URL(authority).host] },
  });

function percentiles(samples) {
  samples.sort((a, b) => a - b);
  return [samples[Math.floor(samples.length / 2)], samples[Math.floor(samples.length * 0.99)]];
}

async function timedCalls(call) {
  const samples = [];
  for (let i = 0; i < BATCHES; i++) {
    const start = process.hrtime.bigint();
    for (let j = 0; j < BATCH; j++) await call();
    samples.push(Number(process.hrtime.bigint() - start) / BATCH);
  }
  return percentiles(samples);
}

const out = { library: `msal-node ${pkg.version}` };

// Cold: a new application object to the first token, in-process (metadata included).
let start = process.hrtime.bigint();
const app = confidential();
const first = await app.acquireTokenByClientCredential({ scopes: CC_SCOPES });
out.cold_acquire_ms = Number(process.hrtime.bigint() - start) / 1e6;
if (!first.accessToken) throw new Error("no token");

// Cached client credentials.
if (!(await app.acquireTokenByClientCredential({ scopes: CC_SCOPES })).fromCache) throw new Error("not cached");
[out.cached_cc_p50_ns, out.cached_cc_p99_ns] = await timedCalls(() => app.acquireTokenByClientCredential({ scopes: CC_SCOPES }));

// Cached silent acquire for a user signed in with ROPC.
const pub = new msal.PublicClientApplication({ auth: { clientId: info.public_client_id, authority: ROPC, knownAuthorities: [host] } });
const signedIn = await pub.acquireTokenByUsernamePassword({ scopes: USER_SCOPES, username: info.username, password: info.password });
const account = signedIn.account;
if (!(await pub.acquireTokenSilent({ account, scopes: USER_SCOPES })).fromCache) throw new Error("silent not cached");
[out.cached_silent_p50_ns, out.cached_silent_p99_ns] = await timedCalls(() => pub.acquireTokenSilent({ account, scopes: USER_SCOPES }));

// N concurrent callers arrive when the cached token has expired: how many token requests
// reach the tenant.
const N = 1000;
const crowd = confidential(info.confidential_client_id, EXPIRY_SIGNIN);
await crowd.acquireTokenByClientCredential({ scopes: CC_SCOPES });
await admin("reset", "POST", expiry.base_url); // from here on, every request counts
await new Promise((resolve) => setTimeout(resolve, (expiry.lifetime_secs - 300 + 1) * 1000));
const results = await Promise.all(Array.from({ length: N }, () => crowd.acquireTokenByClientCredential({ scopes: CC_SCOPES })));
if (results.some((r) => !r.accessToken)) throw new Error("a caller got no token");
out.concurrent_callers = N;
out.concurrent_requests = (await admin("stats", "GET", expiry.base_url)).token_requests;

// Memory per cached token: 1,000 applications (one per client ID) each cache a token; then
// their caches are cleared. The difference in heap (after a full GC) is what the cached tokens
// hold.
const ids = Array.from({ length: info.extra_clients }, (_, n) => `00000000-0000-4000-8000-${String(n).padStart(12, "0")}`);
const apps = ids.map((id) => confidential(id));
for (const a of apps) {
  const r = await a.acquireTokenByClientCredential({ scopes: CC_SCOPES });
  if (!r.accessToken) throw new Error("no token");
}
global.gc();
const withTokens = process.memoryUsage().heapUsed;
for (const a of apps) await a.clearCache();
global.gc();
const withoutTokens = process.memoryUsage().heapUsed;
out.memory_tokens = apps.length;
out.memory_per_token_bytes = (withTokens - withoutTokens) / apps.length;

console.log(JSON.stringify(out));
