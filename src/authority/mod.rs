//! Where tokens come from: [`Authority`], the token endpoint (and for B2C the policy and the
//! OpenID metadata URL). [`AuthorityBuilder`] builds it from tenant + policy in every form B2C
//! serves, [`EntraAuthorityBuilder`] for Entra ID and External ID; any OAuth2 token URL can be
//! given outright ([`Authority::from_token_url`]) or found by OpenID discovery
//! ([`Authority::discover`]).
//!
//! Inputs are validated before they enter a URL, and URLs are assembled from path segments
//! so that nothing the caller passes can change the URL's shape.

mod b2c;
pub(crate) mod discovery;
mod entra;

use std::net::IpAddr;

use url::Url;

pub use self::b2c::{AuthorityBuilder, Cloud, Policy, PolicyForm};
pub use self::entra::EntraAuthorityBuilder;
use crate::error::{Error, Result};

/// Where tokens come from: a token endpoint URL, and for B2C the policy and the OpenID
/// metadata URL that belong to it.
///
/// Build it from tenant + policy with [`Authority::b2c`] or [`Authority::builder`], or give
/// any OAuth2 token URL with [`Authority::from_token_url`].
///
/// ```
/// use b2c_token::{Authority, authority::PolicyForm};
///
/// let authority = Authority::b2c("contoso", "B2C_1_ropc")?;
/// assert_eq!(
///     authority.token_endpoint().as_str(),
///     "https://contoso.b2clogin.com/contoso.onmicrosoft.com/B2C_1_ropc/oauth2/v2.0/token"
/// );
///
/// let query = Authority::builder("contoso.onmicrosoft.com", "B2C_1_ropc")
///     .policy_form(PolicyForm::Query)
///     .build()?;
/// assert_eq!(
///     query.token_endpoint().as_str(),
///     "https://contoso.b2clogin.com/contoso.onmicrosoft.com/oauth2/v2.0/token?p=B2C_1_ropc"
/// );
/// # Ok::<(), b2c_token::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Authority {
    pub(super) token_endpoint: Url,
    pub(super) metadata_endpoint: Option<Url>,
    pub(super) policy: Option<Policy>,
    pub(super) kind: AuthorityKind,
    /// What a discovery document said beyond the token endpoint.
    pub(super) discovered: Option<discovery::Discovered>,
}

/// Which identity service an [`Authority`] belongs to: it decides which grants and client
/// credentials can work there (the grant matrix, docs/migrating-to-external-id.md).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum AuthorityKind {
    /// Azure AD B2C: ROPC (public client), client credentials with a **secret only**, refresh.
    B2c,
    /// Microsoft Entra External ID (`*.ciamlogin.com`): client credentials with a secret,
    /// certificate or federated credential; **no ROPC** (native authentication replaces it).
    ExternalId,
    /// Microsoft Entra ID (`login.microsoftonline.com` and the sovereign clouds): ROPC
    /// (confidential clients send their credential), client credentials with a secret,
    /// certificate or federated credential.
    Entra,
    /// Any other OAuth2 server: every grant is tried as configured.
    Other,
}

impl Authority {
    /// The canonical B2C authority: `https://{tenant}.b2clogin.com/{tenant}.onmicrosoft.com/{policy}/oauth2/v2.0/token`.
    ///
    /// `tenant` may be `contoso`, `contoso.onmicrosoft.com` or `contoso.b2clogin.com`.
    ///
    /// # Errors
    /// [`Error::Config`] if the tenant or policy is not valid.
    pub fn b2c(tenant: &str, policy: &str) -> Result<Self> {
        Self::builder(tenant, policy).build()
    }

    /// A builder for the other forms: `?p=`, `tfp`, tenant GUID, custom domain, China cloud.
    pub fn builder(tenant: &str, policy: &str) -> AuthorityBuilder {
        AuthorityBuilder::new(tenant, policy)
    }

    /// Any OAuth2 token endpoint, used as given (Entra External ID, another OAuth2 server,
    /// or a `token_endpoint` read from a discovery document).
    ///
    /// If the URL carries a `p` query parameter it is taken as the B2C policy.
    ///
    /// ```
    /// let authority = b2c_token::Authority::from_token_url(
    ///     "https://contoso.ciamlogin.com/contoso.onmicrosoft.com/oauth2/v2.0/token",
    /// )?;
    /// assert!(authority.policy().is_none());
    /// assert!(b2c_token::Authority::from_token_url("http://idp.example.com/token").is_err());
    /// assert!(b2c_token::Authority::from_token_url("http://127.0.0.1:8080/token").is_ok());
    /// # Ok::<(), b2c_token::Error>(())
    /// ```
    ///
    /// # Errors
    /// [`Error::Config`] if the URL does not parse, is not `https://` (plain `http://` is
    /// accepted for loopback hosts only), or carries credentials or a fragment.
    pub fn from_token_url(url: &str) -> Result<Self> {
        let token_endpoint =
            Url::parse(url.trim()).map_err(|e| Error::config(format!("token URL {url:?} does not parse: {e}")))?;
        require_secure(&token_endpoint, "token URL")?;
        if token_endpoint.fragment().is_some() {
            return Err(Error::config("token URL must not have a #fragment"));
        }
        let policy = token_endpoint
            .query_pairs()
            .find(|(name, _)| name == "p")
            .map(|(_, value)| Policy::new(&value))
            .transpose()?;
        let kind = kind_of(&token_endpoint, policy.is_some());
        Ok(Self {
            token_endpoint,
            metadata_endpoint: None,
            policy,
            kind,
            discovered: None,
        })
    }

    /// Which identity service this is, from how it was built (or, for a bare URL, its host).
    ///
    /// ```
    /// use b2c_token::{Authority, authority::AuthorityKind};
    /// assert_eq!(Authority::b2c("contoso", "B2C_1_ropc")?.kind(), AuthorityKind::B2c);
    /// assert_eq!(Authority::external_id("contoso")?.kind(), AuthorityKind::ExternalId);
    /// assert_eq!(
    ///     Authority::from_token_url("https://login.microsoftonline.com/contoso.com/oauth2/v2.0/token")?.kind(),
    ///     AuthorityKind::Entra
    /// );
    /// # Ok::<(), b2c_token::Error>(())
    /// ```
    #[must_use]
    pub fn kind(&self) -> AuthorityKind {
        self.kind
    }

    /// The URL token requests are POSTed to.
    #[must_use]
    pub fn token_endpoint(&self) -> &Url {
        &self.token_endpoint
    }

    /// The OpenID Connect discovery document for the same tenant and policy, or `None`
    /// for an authority built from a bare token URL.
    ///
    /// ```
    /// let authority = b2c_token::Authority::b2c("contoso", "B2C_1_ropc")?;
    /// assert_eq!(
    ///     authority.metadata_endpoint().map(|u| u.as_str()),
    ///     Some("https://contoso.b2clogin.com/contoso.onmicrosoft.com/B2C_1_ropc/v2.0/.well-known/openid-configuration")
    /// );
    /// # Ok::<(), b2c_token::Error>(())
    /// ```
    #[must_use]
    pub fn metadata_endpoint(&self) -> Option<&Url> {
        self.metadata_endpoint.as_ref()
    }

    /// The B2C policy, when known.
    #[must_use]
    pub fn policy(&self) -> Option<&Policy> {
        self.policy.as_ref()
    }

    /// Whether this is an Azure AD B2C authority: built from tenant + policy, or a token URL
    /// on `*.b2clogin.com`/`*.b2clogin.cn`, with a `p=` policy, or with a `B2C_1…` policy
    /// segment. B2C-only conventions (ROPC's default scope naming the client ID) apply only
    /// then.
    #[must_use]
    pub fn is_b2c(&self) -> bool {
        self.kind == AuthorityKind::B2c
    }

    /// The token endpoint's host, for logs.
    #[must_use]
    pub fn host(&self) -> &str {
        self.token_endpoint.host_str().unwrap_or_default()
    }

    /// Which accounts this authority signs in, as the lockout rails count rejected passwords:
    /// for B2C, the host (one per tenant, whether the path names the tenant by domain or GUID)
    /// and the policy case-folded, whatever URL form carries it; elsewhere the endpoint.
    pub(crate) fn account_scope(&self) -> String {
        match (&self.kind, &self.policy) {
            (AuthorityKind::B2c, Some(policy)) => format!(
                "b2c\n{}://{}\n{}",
                self.token_endpoint.scheme(),
                self.token_endpoint.authority().to_ascii_lowercase(),
                policy.as_str().to_lowercase()
            ),
            _ => self.endpoint_identity(),
        }
    }

    /// Which endpoint this is, as cache keys and stores tell endpoints apart: the token URL
    /// with only its scheme and host case-folded (the URL parser already lower-cases both), so
    /// `/TenantA/token` and `/tenanta/token`, or `?tenant=A` and `?tenant=a`, stay two
    /// endpoints. A B2C authority's path and query hold only its tenant, its policy and fixed
    /// segments, which B2C compares case-insensitively (b2c-protocol §1.3: "compare and cache
    /// policies case-insensitively"): there they are folded too.
    pub(crate) fn endpoint_identity(&self) -> String {
        let url = &self.token_endpoint;
        if self.kind == AuthorityKind::B2c && self.policy.is_some() {
            url.as_str().to_lowercase()
        } else {
            url.as_str().to_owned()
        }
    }
}

/// `b2c`, `external-id` (or `ciam`) and `entra` (or `entra-id`), case-insensitively: the one
/// parser behind `B2C_AUTHORITY` and the command's `--authority`.
///
/// ```
/// use b2c_token::authority::AuthorityKind;
/// assert_eq!("External-ID".parse::<AuthorityKind>()?, AuthorityKind::ExternalId);
/// assert!("okta".parse::<AuthorityKind>().is_err());
/// # Ok::<(), b2c_token::Error>(())
/// ```
impl std::str::FromStr for AuthorityKind {
    type Err = Error;

    fn from_str(value: &str) -> Result<Self> {
        match value.trim().to_ascii_lowercase().as_str() {
            "b2c" => Ok(Self::B2c),
            "external-id" | "externalid" | "ciam" => Ok(Self::ExternalId),
            "entra" | "entra-id" | "aad" => Ok(Self::Entra),
            other => Err(Error::config(format!(
                "authority {other:?} is not known: use b2c, external-id or entra"
            ))),
        }
    }
}

/// The name [`AuthorityKind`]'s parser reads: `b2c`, `external-id`, `entra`, `other`.
impl std::fmt::Display for AuthorityKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::B2c => "b2c",
            Self::ExternalId => "external-id",
            Self::Entra => "entra",
            Self::Other => "other",
        })
    }
}

/// The kind a bare token URL belongs to: B2C by policy or host, Entra by its hosts.
fn kind_of(url: &Url, has_policy: bool) -> AuthorityKind {
    let host = url.host_str().unwrap_or_default().to_ascii_lowercase();
    let b2c_segment = url
        .path_segments()
        .is_some_and(|mut segments| segments.any(|s| s.to_ascii_lowercase().starts_with("b2c_1")));
    if has_policy || host.ends_with(".b2clogin.com") || host.ends_with(".b2clogin.cn") || b2c_segment {
        AuthorityKind::B2c
    } else if host.ends_with(".ciamlogin.com") {
        AuthorityKind::ExternalId
    } else if [
        "login.microsoftonline.com",
        "login.microsoftonline.us",
        "login.chinacloudapi.cn",
        "login.partner.microsoftonline.cn",
    ]
    .contains(&host.as_str())
    {
        AuthorityKind::Entra
    } else {
        AuthorityKind::Other
    }
}

/// The token and metadata endpoints under `base`: `{base}/{prefix…}/oauth2/v2.0/token` and
/// `{base}/{prefix…}/v2.0/.well-known/openid-configuration`, each with `query` appended.
/// Built from path segments, so nothing in `prefix` can change the URL's shape.
fn endpoints(base: &Url, prefix: &[&str], query: Option<(&str, &str)>) -> Result<(Url, Url)> {
    let endpoint = |tail: &[&str]| -> Result<Url> {
        let mut url = base.clone();
        url.path_segments_mut()
            .map_err(|()| Error::config("custom domain must be an http(s) URL"))?
            .pop_if_empty()
            .extend(prefix)
            .extend(tail);
        if let Some((name, value)) = query {
            url.query_pairs_mut().append_pair(name, value);
        }
        Ok(url)
    };
    Ok((
        endpoint(&["oauth2", "v2.0", "token"])?,
        endpoint(&["v2.0", ".well-known", "openid-configuration"])?,
    ))
}

/// One DNS label as tenant names use them: 1–63 ASCII letters, digits and inner hyphens.
fn is_dns_label(label: &str) -> bool {
    !label.is_empty()
        && label.len() <= 63
        && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        && !label.starts_with('-')
        && !label.ends_with('-')
}

/// Refuses URLs that would send secrets in clear text or embed credentials.
pub(crate) fn require_secure(url: &Url, what: &str) -> Result<()> {
    match url.scheme() {
        "https" => {}
        "http" if is_loopback(url) => {}
        "http" => {
            return Err(Error::config(format!(
                "{what} must use https:// (plain http:// is accepted only for loopback hosts such as 127.0.0.1)"
            )))
        }
        other => return Err(Error::config(format!("{what} has scheme {other:?}: use https://"))),
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(Error::config(format!("{what} has no host")));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(Error::config(format!(
            "{what} must not embed credentials (user:password@)"
        )));
    }
    Ok(())
}

/// Whether a host name (as in a URL, IPv6 in brackets) is this machine.
#[cfg(any(feature = "reqwest-middleware", feature = "tower"))]
pub(crate) fn is_loopback_host(host: &str) -> bool {
    let host = host.trim_start_matches('[').trim_end_matches(']');
    host.eq_ignore_ascii_case("localhost") || host.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

/// Whether the URL's host is this machine.
pub(crate) fn is_loopback(url: &Url) -> bool {
    match url.host() {
        Some(url::Host::Domain(domain)) => domain.eq_ignore_ascii_case("localhost"),
        Some(url::Host::Ipv4(ip)) => IpAddr::V4(ip).is_loopback(),
        Some(url::Host::Ipv6(ip)) => IpAddr::V6(ip).is_loopback(),
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn token_url(builder: AuthorityBuilder) -> String {
        builder.build().unwrap().token_endpoint().to_string()
    }

    #[test]
    fn tenant_spellings_give_the_same_url() {
        for tenant in [
            "contoso",
            "Contoso",
            "contoso.onmicrosoft.com",
            "contoso.b2clogin.com",
            " contoso ",
        ] {
            assert_eq!(
                token_url(Authority::builder(tenant, "B2C_1_ropc")),
                "https://contoso.b2clogin.com/contoso.onmicrosoft.com/B2C_1_ropc/oauth2/v2.0/token",
                "{tenant}"
            );
        }
    }

    #[test]
    fn every_form() {
        let guid = "914d88b1-0000-4000-8000-00000000abcd";
        assert_eq!(
            token_url(Authority::builder("contoso", "B2C_1_ropc").tenant_id(guid)),
            format!("https://contoso.b2clogin.com/{guid}/B2C_1_ropc/oauth2/v2.0/token")
        );
        assert_eq!(
            token_url(Authority::builder("contoso", "B2C_1_ropc").policy_form(PolicyForm::Tfp)),
            "https://contoso.b2clogin.com/tfp/contoso.onmicrosoft.com/B2C_1_ropc/oauth2/v2.0/token"
        );
        assert_eq!(
            token_url(
                Authority::builder(guid, "B2C_1_ropc")
                    .base_url("login.contoso.com")
                    .policy_form(PolicyForm::Query)
            ),
            format!("https://login.contoso.com/{guid}/oauth2/v2.0/token?p=B2C_1_ropc")
        );
        assert_eq!(
            token_url(Authority::builder("fabrikam.partner.onmschina.cn", "B2C_1_ropc").policy_form(PolicyForm::Query)),
            "https://fabrikam.b2clogin.cn/fabrikam.partner.onmschina.cn/oauth2/v2.0/token?p=B2C_1_ropc"
        );
        assert_eq!(
            token_url(Authority::builder("contoso", "B2C_1_ropc").base_url("http://127.0.0.1:8080/base/")),
            "http://127.0.0.1:8080/base/contoso.onmicrosoft.com/B2C_1_ropc/oauth2/v2.0/token"
        );
    }

    #[test]
    fn metadata_follows_the_form() {
        let query = Authority::builder("contoso", "B2C_1_x")
            .policy_form(PolicyForm::Query)
            .build()
            .unwrap();
        assert_eq!(
            query.metadata_endpoint().unwrap().as_str(),
            "https://contoso.b2clogin.com/contoso.onmicrosoft.com/v2.0/.well-known/openid-configuration?p=B2C_1_x"
        );
        let tfp = Authority::builder("contoso", "B2C_1_x")
            .policy_form(PolicyForm::Tfp)
            .build()
            .unwrap();
        assert_eq!(
            tfp.metadata_endpoint().unwrap().as_str(),
            "https://contoso.b2clogin.com/tfp/contoso.onmicrosoft.com/B2C_1_x/v2.0/.well-known/openid-configuration"
        );
    }

    #[test]
    fn bad_inputs_are_config_errors() {
        let bad = [
            Authority::builder("con toso", "B2C_1_x").build(),
            Authority::builder("contoso/evil", "B2C_1_x").build(),
            Authority::builder("", "B2C_1_x").build(),
            Authority::builder("contoso", "").build(),
            Authority::builder("contoso", "B2C_1_x/../y").build(),
            Authority::builder("contoso", "..").build(),
            Authority::builder("contoso", "B2C_1_x?p=y").build(),
            Authority::builder("contoso", "B2C_1_x").tenant_id("not-a-guid").build(),
            Authority::builder("00000000-0000-0000-0000-000000000001", "B2C_1_x").build(),
            Authority::builder("contoso", "B2C_1_x")
                .base_url("http://login.contoso.com")
                .build(),
            Authority::builder("contoso", "B2C_1_x")
                .base_url("ftp://login.contoso.com")
                .build(),
            Authority::builder("contoso", "B2C_1_x")
                .base_url("https://u:p@login.contoso.com")
                .build(),
        ];
        for result in bad {
            assert!(matches!(result, Err(Error::Config(_))), "{result:?}");
        }
    }

    #[test]
    fn token_url_rules() {
        assert!(Authority::from_token_url("https://idp.example.com/oauth/token").is_ok());
        assert!(Authority::from_token_url("http://localhost:9/token").is_ok());
        assert!(Authority::from_token_url("http://[::1]:9/token").is_ok());
        assert!(Authority::from_token_url("http://127.0.0.2/token").is_ok());
        assert!(Authority::from_token_url("http://10.0.0.1/token").is_err());
        assert!(Authority::from_token_url("https://u:p@idp.example.com/token").is_err());
        assert!(Authority::from_token_url("not a url").is_err());
        let with_policy =
            Authority::from_token_url("https://x.b2clogin.com/x.onmicrosoft.com/oauth2/v2.0/token?p=b2c_1a_x").unwrap();
        assert_eq!(with_policy.policy(), Some(&Policy::new("B2C_1A_X").unwrap()));
    }
}
