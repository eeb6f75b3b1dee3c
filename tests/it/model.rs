//! A model-based test of the cache's whole promise (issue 24, item 7): random sequences
//! (seeded, reproducible) of callers with right and wrong credentials of every kind the fake
//! B2C tenant serves (client secrets, passwords), replicas sharing a store and a cache of its
//! own, clock jumps, server failures and invalidations. After every step:
//!
//! * no token went to a credential that did not earn it: a wrong secret or password never gets
//!   one, and a token's claims name the client (and user) that asked;
//! * no token was served expired (on tokio's clock, which the test moves);
//! * a key makes at most one request per lifetime window: a caller whose group (one cache, or
//!   replicas sharing a store) fetched the token less than a refresh window ago, with no
//!   invalidation or fault since, makes no request.
//!
//! `MODEL_SEQUENCES` sets how many sequences run (CI: the default below; a long run:
//! `MODEL_SEQUENCES=100000 cargo test --release --all-features --test it model::`), and
//! `MODEL_SEED` the first seed. A failure names its seed and step.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use b2c_token::test_tenant::{defaults, FakeTenant, Fault};
use b2c_token::{
    client::GrantKind, client::RetryPolicy, store::MemoryStore, Client, Password, Scopes, Token, TokenCache,
    TokenSource,
};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;

const DEFAULT_SEQUENCES: u64 = 1_000;
const STEPS: usize = 40;
const LIFETIME: Duration = Duration::from_secs(600);
/// Calls within this long of a group's fetch must make no request: the refresh window opens
/// 300 s before expiry (at 300 s), less the scheduler's jitter.
const FRESH_FOR: Duration = Duration::from_secs(250);

const C2: &str = "66666666-6666-4666-8666-666666666666";
const U2: &str = "77777777-7777-4777-8777-777777777777";
const BOB: &str = "bob@contoso.com";

/// splitmix64: small, seedable, good enough to pick steps.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// Who asks, and whether with the right credential.
#[derive(Debug, Clone, Copy)]
struct Caller {
    principal: usize,
    right: bool,
}

/// The principals: two daemons (client secrets) and two users (passwords), each with its own
/// client ID so that the tenant's request log tells their requests apart.
const PRINCIPALS: [(&str, Option<&str>); 4] = [
    (defaults::CONFIDENTIAL_CLIENT_ID, None),
    (C2, None),
    (defaults::PUBLIC_CLIENT_ID, Some(defaults::USERNAME)),
    (U2, Some(BOB)),
];

/// What every sequence shares: the tenant (its key costs ~100 ms) and the clients (each has
/// its own HTTP connection pool; building them costs milliseconds). Neither keeps tokens.
struct Fixture {
    tenant: FakeTenant,
    clients: HashMap<(usize, bool), Client>,
}

struct World<'t> {
    tenant: &'t FakeTenant,
    clients: &'t HashMap<(usize, bool), Client>,
    /// Caches 0 and 1 share a store (replicas); cache 2 is on its own.
    caches: [TokenCache; 3],
    /// Per (group, principal): when the group last fetched a token for it, if known fresh.
    fetched_at: HashMap<(usize, usize), tokio::time::Instant>,
    faults: bool,
}

fn group(cache: usize) -> usize {
    usize::from(cache == 2)
}

impl Fixture {
    async fn new() -> Self {
        let tenant = FakeTenant::builder()
            .access_token_lifetime(LIFETIME)
            .confidential_client(C2, "second-secret", &[defaults::API_APP_ROLE])
            .public_client(U2)
            .user(BOB, "bobs-password")
            .start()
            .await
            .unwrap();
        let mut clients = HashMap::new();
        for (principal, (client_id, user)) in PRINCIPALS.iter().enumerate() {
            for right in [true, false] {
                let policy = if user.is_some() {
                    defaults::ROPC_POLICY
                } else {
                    defaults::SIGNIN_POLICY
                };
                let mut builder =
                    Client::builder(tenant.authority(policy).unwrap(), client_id).retry_policy(RetryPolicy::none());
                if user.is_none() {
                    let secret = match (principal, right) {
                        (0, true) => defaults::CLIENT_SECRET,
                        (1, true) => "second-secret",
                        _ => "a-wrong-secret",
                    };
                    builder = builder.client_secret(secret);
                }
                clients.insert((principal, right), builder.build().unwrap());
            }
        }
        Self { tenant, clients }
    }
}

impl<'t> World<'t> {
    /// Fresh caches (two replicas sharing a store, one alone) over the fixture.
    fn new(fixture: &'t Fixture) -> Self {
        fixture.tenant.clear_faults();
        fixture.tenant.clear_request_log();
        let store = Arc::new(MemoryStore::new());
        let caches = [
            TokenCache::builder().store(store.clone()).build(),
            TokenCache::builder().store(store).build(),
            TokenCache::new(),
        ];
        Self {
            tenant: &fixture.tenant,
            clients: &fixture.clients,
            caches,
            fetched_at: HashMap::new(),
            faults: false,
        }
    }

    fn password(principal: usize, right: bool) -> Password {
        Password::new(match (principal, right) {
            (2, true) => defaults::PASSWORD,
            (3, true) => "bobs-password",
            _ => "not-the-password",
        })
    }

    fn source(&self, cache: usize, caller: Caller) -> TokenSource {
        let client = &self.clients[&(caller.principal, caller.right)];
        match PRINCIPALS[caller.principal].1 {
            None => {
                self.caches[cache].client_credentials(client, &Scopes::new([self.tenant.api_default_scope()]).unwrap())
            }
            Some(user) => self.caches[cache].password(
                client,
                user,
                &Self::password(caller.principal, caller.right),
                &Scopes::empty(),
            ),
        }
    }

    fn requests_for(&self, client_id: &str) -> usize {
        self.tenant.token_requests_from(client_id)
    }

    /// Runs the runtime until the tenant's request log stops growing (background jobs done).
    async fn settle(&self) {
        let (mut last, mut stable) = (usize::MAX, 0);
        for _ in 0..2_000 {
            for _ in 0..8 {
                tokio::task::yield_now().await;
            }
            std::thread::sleep(Duration::from_micros(50));
            let now = self.tenant.total_token_requests();
            stable = if now == last { stable + 1 } else { 0 };
            if stable == 4 {
                return;
            }
            last = now;
        }
    }
}

fn claims(token: &Token) -> serde_json::Value {
    let access = token
        .access_token()
        .expect("an access token")
        .expose_secret()
        .to_owned();
    let payload = access.split('.').nth(1).expect("a JWT");
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap()
}

async fn run_sequence(fixture: &Fixture, seed: u64) {
    let mut rng = Rng(seed);
    let mut world = World::new(fixture);
    for step in 0..STEPS {
        let at = format!("seed {seed}, step {step}");
        match rng.below(20) {
            0..=13 => {
                let cache = rng.below(3) as usize;
                let caller = Caller {
                    principal: rng.below(4) as usize,
                    right: rng.below(4) != 0,
                };
                let (client_id, user) = PRINCIPALS[caller.principal];
                let before = world.requests_for(client_id);
                let result = world.source(cache, caller).token().await;
                let requests = world.requests_for(client_id) - before;
                let now = tokio::time::Instant::now();
                let key = (group(cache), caller.principal);
                match result {
                    Ok(token) => {
                        assert!(caller.right, "{at}: {caller:?} got a token with a wrong credential");
                        let claims = claims(&token);
                        match user {
                            None => assert_eq!(claims["azp"], client_id, "{at}: another client's token"),
                            Some(user) => {
                                assert_eq!(claims["aud"], client_id, "{at}: another client's token");
                                assert_eq!(claims["emails"][0], user, "{at}: another user's token");
                            }
                        }
                        assert!(
                            token.expires_at().is_some_and(|at| at > now),
                            "{at}: served an expired token"
                        );
                        if let Some(fetched) = world.fetched_at.get(&key) {
                            if now < *fetched + FRESH_FOR {
                                assert_eq!(requests, 0, "{at}: {caller:?} asked again within its token's window");
                            }
                        }
                        if requests > 0 {
                            world.fetched_at.insert(key, now);
                        }
                    }
                    Err(error) => {
                        assert!(
                            !caller.right || world.faults,
                            "{at}: {caller:?} in cache {cache} was refused without a fault: {error}"
                        );
                        if caller.right {
                            world.fetched_at.remove(&key);
                        }
                    }
                }
            }
            14..=15 => {
                // A clock jump forward, up to past the token's lifetime; background refreshes
                // run, and what they fetched is the groups' business.
                let jump = Duration::from_secs(1 + rng.below(700));
                let before: Vec<usize> = PRINCIPALS.iter().map(|(id, _)| world.requests_for(id)).collect();
                tokio::time::advance(jump).await;
                world.settle().await;
                for (principal, (client_id, _)) in PRINCIPALS.iter().enumerate() {
                    if world.requests_for(client_id) != before[principal] {
                        world.fetched_at.retain(|(_, p), _| *p != principal);
                    }
                }
            }
            16 => {
                world.tenant.inject(Fault::ServiceUnavailable, 1);
                world.faults = true;
                world.fetched_at.clear();
            }
            _ => {
                // An API rejected the token: invalidate it in one cache.
                let cache = rng.below(3) as usize;
                let caller = Caller {
                    principal: rng.below(4) as usize,
                    right: true,
                };
                let source = world.source(cache, caller);
                world.caches[cache].invalidate(source.key());
                world.fetched_at.remove(&(group(cache), caller.principal));
            }
        }
    }
    assert!(
        world.tenant.token_requests(GrantKind::ClientCredentials) + world.tenant.token_requests(GrantKind::Password)
            > 0
    );
}

#[tokio::test]
async fn random_sequences_keep_the_cache_promise() {
    let sequences = std::env::var("MODEL_SEQUENCES")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(DEFAULT_SEQUENCES);
    let first = std::env::var("MODEL_SEED")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(0x5EED_u64);
    let _clock = crate::support::clock::manual_clock();
    let fixture = Fixture::new().await;
    for seed in first..first + sequences {
        run_sequence(&fixture, seed).await;
    }
}
