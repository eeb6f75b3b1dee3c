//! Configuring a [`Client`]: its credential, HTTP settings, retries and lockout rails, all
//! checked at [`ClientBuilder::build`].

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use super::grant::ClientAuthentication;
use super::lockout::RejectedCredentials;
use super::retry::RetryPolicy;
use super::transport::Transport;
use super::{Client, ClientInner};
use crate::authority::{Authority, AuthorityKind};
use crate::credential::{ClientAssertion, ClientCertificate};
use crate::error::{Error, Result};
use crate::net::{http_client, secure, HttpChoice, DEFAULT_CONNECT_TIMEOUT, DEFAULT_TIMEOUT};
use crate::secret::ClientSecret;

/// Configures a [`Client`]; nothing is checked until [`ClientBuilder::build`].
#[must_use]
pub struct ClientBuilder {
    authority: Authority,
    client_id: String,
    client_secret: Option<ClientSecret>,
    assertion: Option<Arc<dyn ClientAssertion>>,
    client_authentication: ClientAuthentication,
    send_response_type: bool,
    refresh_resource: Option<String>,
    http: HttpChoice,
    timeout: Duration,
    connect_timeout: Duration,
    retry: RetryPolicy,
    remember_rejections: Duration,
    root_certificates: Vec<Vec<u8>>,
    only_added_roots: bool,
    confidential_password_grant: bool,
    #[cfg(feature = "metrics")]
    meter: Option<opentelemetry::metrics::Meter>,
}

/// How long rejected ROPC credentials are answered from memory by default.
const DEFAULT_REMEMBER_REJECTIONS: Duration = Duration::from_secs(300);

impl ClientBuilder {
    /// See [`Client::builder`].
    pub(super) fn new(authority: Authority, client_id: &str) -> Self {
        Self {
            authority,
            client_id: client_id.to_owned(),
            client_secret: None,
            assertion: None,
            client_authentication: ClientAuthentication::FormBody,
            send_response_type: false,
            refresh_resource: None,
            http: HttpChoice::Own,
            timeout: DEFAULT_TIMEOUT,
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
            retry: RetryPolicy::default(),
            remember_rejections: DEFAULT_REMEMBER_REJECTIONS,
            root_certificates: Vec::new(),
            only_added_roots: false,
            confidential_password_grant: false,
            #[cfg(feature = "metrics")]
            meter: None,
        }
    }

    /// The client secret, for client credentials (and refreshing confidential grants).
    pub fn client_secret(mut self, secret: impl Into<ClientSecret>) -> Self {
        self.client_secret = Some(secret.into());
        self
    }

    /// A certificate credential (`private_key_jwt`): a client assertion signed with the
    /// certificate's key, minted for every attempt. Entra ID and External ID only: B2C
    /// supports client secrets alone, and [`ClientBuilder::build`] says so.
    pub fn client_certificate(self, certificate: ClientCertificate) -> Self {
        self.client_assertion(certificate)
    }

    /// Any source of client assertions: a [`crate::credential::FederatedTokenFile`] (workload identity),
    /// or your own [`ClientAssertion`]. Asked once per token request attempt.
    pub fn client_assertion(mut self, assertion: impl ClientAssertion + 'static) -> Self {
        self.assertion = Some(Arc::new(assertion));
        self
    }

    /// How the secret is sent. Default: in the form body, which B2C requires.
    pub fn client_authentication(mut self, method: ClientAuthentication) -> Self {
        self.client_authentication = method;
        self
    }

    /// Send `response_type=token id_token` with ROPC, as B2C's ROPC article shows. Off by
    /// default: MSAL omits it, and sending it needs the implicit-flow setting (AADB2C90057).
    pub fn send_response_type(mut self, send: bool) -> Self {
        self.send_response_type = send;
        self
    }

    /// Also send `resource={resource}` when refreshing, as B2C's ROPC article shows.
    pub fn refresh_resource(mut self, resource: impl Into<String>) -> Self {
        self.refresh_resource = Some(resource.into());
        self
    }

    /// Token requests go through a client built from `builder` (your proxy, TLS, DNS or
    /// connection-pool settings), finished with the crate's rules, which override yours where
    /// they conflict: no redirects, the timeouts of this builder, and no proxy at all for a
    /// plain `http://` (loopback) token endpoint. Every promise the crate's own client keeps
    /// holds. This is the way to customise the HTTP client.
    ///
    /// ```no_run
    /// # fn demo() -> Result<(), b2c_token::Error> {
    /// use b2c_token::{Authority, Client};
    ///
    /// let http = reqwest::Client::builder().pool_max_idle_per_host(4);
    /// let client = Client::builder(Authority::b2c("contoso", "B2C_1_signin")?, "<client id>")
    ///     .client_secret("<secret>")
    ///     .http_client_builder(http)
    ///     .build()?;
    /// # let _ = client; Ok(()) }
    /// ```
    pub fn http_client_builder(mut self, builder: reqwest::ClientBuilder) -> Self {
        self.http = HttpChoice::Builder(Box::new(builder));
        self
    }

    /// Sends token requests with an already built `reqwest::Client`, to share its connection
    /// pool. Prefer [`ClientBuilder::http_client_builder`]: a finished client's settings cannot
    /// be read or changed, so with this one the crate can no longer promise that
    ///
    /// * **no redirect is followed**: a client that follows redirects (reqwest's default)
    ///   re-sends the form, client secret and password included, to wherever a 307/308 points.
    ///   A token answered from another URL is refused, but a chain that leads back to the
    ///   token URL cannot be told from a direct answer;
    /// * **no proxy sees a password in clear text**: the client's proxy settings apply,
    ///   including `HTTP_PROXY`, `http_proxy`, `ALL_PROXY` and `all_proxy`, which reqwest reads
    ///   by default. So that this never exposes a form, [`ClientBuilder::build`] refuses a
    ///   finished client for a plain `http://` token endpoint;
    /// * the timeouts of [`ClientBuilder::timeout`] bound the connection: the total timeout is
    ///   set per request, the connect timeout is the client's own.
    ///
    /// Build it with `.redirect(reqwest::redirect::Policy::none())` for the first promise.
    pub fn http_client(mut self, http: reqwest::Client) -> Self {
        self.http = HttpChoice::Client(http);
        self
    }

    /// Total time allowed for one token request. Default 30 s.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Time allowed to connect, for the SDK's own HTTP client. Default 10 s.
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// The OpenTelemetry meter this client's token requests and call durations are reported
    /// to (feature `metrics`; see [`crate::metrics`]). Default: the global meter provider's,
    /// as it is at [`ClientBuilder::build`].
    #[cfg(feature = "metrics")]
    #[cfg_attr(docsrs, doc(cfg(feature = "metrics")))]
    pub fn meter(mut self, meter: &opentelemetry::metrics::Meter) -> Self {
        self.meter = Some(meter.clone());
        self
    }

    /// How failed requests are repeated (transport errors, 429, 5xx, B2C's busy codes).
    /// Default: [`RetryPolicy::default`]; [`RetryPolicy::none`] turns retries off.
    pub fn retry_policy(mut self, policy: RetryPolicy) -> Self {
        self.retry = policy;
        self
    }

    /// For how long username/password pairs that B2C rejected (AADB2C90225 and kin) are
    /// answered from memory instead of being sent again. Default 5 minutes; zero turns it off.
    /// Only a keyed hash of the credentials is kept, never the password.
    pub fn remember_rejected_credentials(mut self, window: Duration) -> Self {
        self.remember_rejections = window;
        self
    }

    /// Also trusts the CA certificate(s) in `pem` (one or more `-----BEGIN CERTIFICATE-----`
    /// blocks), on top of the system's roots: for token endpoints behind a private CA. Checked
    /// by [`ClientBuilder::build`]; applies to the SDK's own HTTP client only.
    ///
    /// ```no_run
    /// # fn demo(authority: b2c_token::Authority) -> Result<(), Box<dyn std::error::Error>> {
    /// let client = b2c_token::Client::builder(authority, "client-id")
    ///     .add_root_certificate(&std::fs::read("/etc/ssl/private-ca.pem")?)
    ///     .build()?;
    /// # let _ = client; Ok(()) }
    /// ```
    pub fn add_root_certificate(mut self, pem: &[u8]) -> Self {
        self.root_certificates.push(pem.to_vec());
        self
    }

    /// Trusts **only** the certificates given to [`ClientBuilder::add_root_certificate`],
    /// not the system's roots: for a token endpoint behind a private CA, a narrower trust, and
    /// a faster start (the system's roots, ~30 ms to load, are never read).
    pub fn trust_only_added_roots(mut self, only: bool) -> Self {
        self.only_added_roots = only;
        self
    }

    /// Sends the client secret with the password grant (ROPC), for servers that require a
    /// confidential client there: Microsoft Entra ID does for confidential apps, and strict
    /// OAuth2 servers refuse ROPC from public clients. Off by default, and wrong for B2C,
    /// whose ROPC is a public-client flow (AADB2C90084 if the secret is sent). Refresh
    /// tokens from such a grant are redeemed with the secret too.
    pub fn confidential_password_grant(mut self, confidential: bool) -> Self {
        self.confidential_password_grant = confidential;
        self
    }

    /// Checks the configuration and builds the client.
    ///
    /// # Errors
    /// [`Error::Config`] for an empty or malformed client ID, a zero timeout, or an HTTP
    /// client that cannot be built.
    pub fn build(self) -> Result<Client> {
        let client_id = self.client_id.trim().to_owned();
        if client_id.is_empty() || client_id.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(Error::config(format!(
                "client ID {:?} is not valid: use the Application (client) ID from the app registration",
                self.client_id
            )));
        }
        if self
            .client_secret
            .as_ref()
            .is_some_and(|s| s.expose_secret().trim().is_empty())
        {
            return Err(Error::config(
                "the client secret is empty or blank: use the secret's value from the app registration",
            ));
        }
        if self.client_secret.is_some() && self.assertion.is_some() {
            return Err(Error::config(
                "configure one client credential: a secret, or a certificate/assertion, not both",
            ));
        }
        if self.assertion.is_some() && self.authority.kind() == AuthorityKind::B2c {
            return Err(Error::config(
                "Azure AD B2C supports only client secrets for client credentials: certificates and client assertions are not supported (its client-assertion errors AADB2C90016/90017/90039 are deprecated, and B2C answers AADB2C99027 for a policy without a ClientAssertionType); use client_secret, or Entra External ID / Entra ID for certificates",
            ));
        }
        if self.timeout.is_zero() || self.connect_timeout.is_zero() {
            return Err(Error::config("timeouts must be longer than zero"));
        }
        let mut roots = Vec::new();
        for pem in &self.root_certificates {
            roots.extend(reqwest::Certificate::from_pem_bundle(pem).map_err(|_| {
                Error::config(
                    "the root certificate is not valid PEM: pass the CA's certificate(s), -----BEGIN CERTIFICATE-----",
                )
            })?);
        }
        if !self.root_certificates.is_empty() && roots.is_empty() {
            return Err(Error::config("the root certificate PEM holds no certificate"));
        }
        if self.only_added_roots && roots.is_empty() {
            return Err(Error::config(
                "trust_only_added_roots needs the CA to trust: add it with add_root_certificate",
            ));
        }
        if matches!(self.http, HttpChoice::Client(_)) && !roots.is_empty() {
            return Err(Error::config(
                "add_root_certificate configures the SDK's own HTTP client: with http_client, add the certificate to that reqwest::Client instead",
            ));
        }
        let endpoint = self.authority.token_endpoint();
        let http = match self.http {
            HttpChoice::Client(_) if endpoint.scheme() == "http" => {
                return Err(Error::config(
                    "a finished reqwest::Client may send a plain http:// token request through a proxy (HTTP_PROXY, ALL_PROXY...) in clear text: pass its builder with ClientBuilder::http_client_builder, or let the crate build the client",
                ))
            }
            HttpChoice::Client(http) => http,
            HttpChoice::Builder(builder) => secure(
                *builder,
                self.timeout,
                self.connect_timeout,
                endpoint,
                roots,
                self.only_added_roots,
            )?,
            HttpChoice::Own => http_client(
                self.timeout,
                self.connect_timeout,
                endpoint,
                roots,
                self.only_added_roots,
            )?,
        };
        let cache_identity = Arc::from(format!("{}\n{client_id}", self.authority.endpoint_identity()));
        Ok(Client {
            inner: Arc::new(ClientInner {
                cache_identity,
                instance: uuid::Uuid::new_v4().as_u64_pair().0,
                authority: self.authority,
                client_id,
                client_secret: self.client_secret,
                assertion: self.assertion,
                client_authentication: self.client_authentication,
                send_response_type: self.send_response_type,
                confidential_password_grant: self.confidential_password_grant,
                refresh_resource: self.refresh_resource,
                transport: Transport {
                    http,
                    timeout: self.timeout,
                    #[cfg(feature = "metrics")]
                    metrics: super::metrics::ClientMetrics::new(
                        &self.meter.unwrap_or_else(crate::metrics::default_meter),
                    ),
                },
                retry: self.retry,
                rejected_credentials: RejectedCredentials::new(self.remember_rejections),
            }),
        })
    }
}

impl fmt::Debug for ClientBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientBuilder")
            .field("token_endpoint", &self.authority.token_endpoint().as_str())
            .field("client_id", &self.client_id)
            .field("client_secret", &self.client_secret)
            .field("assertion", &self.assertion)
            .finish_non_exhaustive()
    }
}
