//! Tenant + policy → token endpoint URL, in every form B2C serves (b2c-protocol §1), or any
//! OAuth2 token URL given outright.
//!
//! Inputs are validated before they enter a URL, and URLs are assembled from path segments
//! so that nothing the caller passes can change the URL's shape.

use std::fmt;
use std::hash::{Hash, Hasher};
use std::net::IpAddr;

use url::Url;

use crate::error::{Error, Result};

/// Which national cloud hosts the tenant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub enum Cloud {
    /// The global cloud: `{tenant}.b2clogin.com` and `{tenant}.onmicrosoft.com`.
    #[default]
    Global,
    /// Azure China (21Vianet): `{tenant}.b2clogin.cn` and `{tenant}.partner.onmschina.cn`.
    China,
}

impl Cloud {
    const fn login_domain(self) -> &'static str {
        match self {
            Self::Global => "b2clogin.com",
            Self::China => "b2clogin.cn",
        }
    }

    const fn tenant_domain(self) -> &'static str {
        match self {
            Self::Global => "onmicrosoft.com",
            Self::China => "partner.onmschina.cn",
        }
    }
}

/// Where the policy goes in the URL. All three reach the same endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub enum PolicyForm {
    /// `/{tenant}/{policy}/oauth2/v2.0/token`, the documented canonical form.
    #[default]
    Path,
    /// `/{tenant}/oauth2/v2.0/token?p={policy}`, the form discovery documents publish.
    Query,
    /// `/tfp/{tenant}/{policy}/oauth2/v2.0/token`, the form MSAL sends.
    Tfp,
}

/// A B2C policy (user flow or custom policy) name, such as `B2C_1_ropc` or `B2C_1A_signin`.
///
/// Sent exactly as configured, but compared and hashed case-insensitively: B2C itself
/// lower-cases policy names in places (b2c-protocol §1.3).
///
/// ```
/// use b2c_token::Policy;
/// let a = Policy::new("B2C_1_ROPC")?;
/// let b = Policy::new("b2c_1_ropc")?;
/// assert_eq!(a, b);
/// assert_eq!(a.as_str(), "B2C_1_ROPC");
/// assert!(Policy::new("B2C_1/../x").is_err());
/// # Ok::<(), b2c_token::Error>(())
/// ```
#[derive(Clone)]
pub struct Policy(String);

impl Policy {
    /// Validates a policy name: 1 to 128 ASCII letters, digits, `_`, `-` or `.`.
    ///
    /// # Errors
    /// [`Error::Config`] if the name is empty, too long or has other characters.
    pub fn new(name: &str) -> Result<Self> {
        let name = name.trim();
        let valid_char = |c: char| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.');
        if name.is_empty() || name.len() > 128 || !name.chars().all(valid_char) || name.chars().all(|c| c == '.') {
            return Err(Error::config(format!(
                "policy name {name:?} is not valid: use the user flow or custom policy name from the portal, e.g. B2C_1_ropc"
            )));
        }
        Ok(Self(name.to_owned()))
    }

    /// The name as configured.
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl PartialEq for Policy {
    fn eq(&self, other: &Self) -> bool {
        self.0.eq_ignore_ascii_case(&other.0)
    }
}

impl Eq for Policy {}

impl Hash for Policy {
    fn hash<H: Hasher>(&self, state: &mut H) {
        for byte in self.0.bytes() {
            state.write_u8(byte.to_ascii_lowercase());
        }
    }
}

impl fmt::Debug for Policy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.0, f)
    }
}

impl fmt::Display for Policy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Where tokens come from: a token endpoint URL, and for B2C the policy and the OpenID
/// metadata URL that belong to it.
///
/// Build it from tenant + policy with [`Authority::b2c`] or [`Authority::builder`], or give
/// any OAuth2 token URL with [`Authority::from_token_url`].
///
/// ```
/// use b2c_token::{Authority, PolicyForm};
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
    token_endpoint: Url,
    metadata_endpoint: Option<Url>,
    policy: Option<Policy>,
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
        AuthorityBuilder {
            tenant: tenant.to_owned(),
            policy: policy.to_owned(),
            tenant_id: None,
            custom_domain: None,
            cloud: None,
            policy_form: PolicyForm::Path,
        }
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
        Ok(Self {
            token_endpoint,
            metadata_endpoint: None,
            policy,
        })
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

    /// The token endpoint's host, for logs.
    #[must_use]
    pub fn host(&self) -> &str {
        self.token_endpoint.host_str().unwrap_or_default()
    }
}

/// Builds a B2C [`Authority`] in any of the URL forms B2C serves. See [`Authority::builder`].
///
/// ```
/// use b2c_token::{Authority, Cloud, PolicyForm};
///
/// let tfp_by_guid = Authority::builder("contoso", "B2C_1_ropc")
///     .tenant_id("00000000-0000-0000-0000-000000000001")
///     .policy_form(PolicyForm::Tfp)
///     .build()?;
/// assert_eq!(
///     tfp_by_guid.token_endpoint().as_str(),
///     "https://contoso.b2clogin.com/tfp/00000000-0000-0000-0000-000000000001/B2C_1_ropc/oauth2/v2.0/token"
/// );
///
/// let custom = Authority::builder("contoso", "B2C_1_ropc").custom_domain("login.contoso.com").build()?;
/// assert_eq!(
///     custom.token_endpoint().as_str(),
///     "https://login.contoso.com/contoso.onmicrosoft.com/B2C_1_ropc/oauth2/v2.0/token"
/// );
///
/// let china = Authority::builder("fabrikam", "B2C_1_ropc").cloud(Cloud::China).build()?;
/// assert_eq!(
///     china.token_endpoint().as_str(),
///     "https://fabrikam.b2clogin.cn/fabrikam.partner.onmschina.cn/B2C_1_ropc/oauth2/v2.0/token"
/// );
/// # Ok::<(), b2c_token::Error>(())
/// ```
#[derive(Debug, Clone)]
#[must_use]
pub struct AuthorityBuilder {
    tenant: String,
    policy: String,
    tenant_id: Option<String>,
    custom_domain: Option<String>,
    cloud: Option<Cloud>,
    policy_form: PolicyForm,
}

impl AuthorityBuilder {
    /// Puts the tenant's GUID in the path instead of `{tenant}.onmicrosoft.com`. The tenant
    /// name is still needed for the `{tenant}.b2clogin.com` host unless a custom domain is set.
    pub fn tenant_id(mut self, guid: &str) -> Self {
        self.tenant_id = Some(guid.to_owned());
        self
    }

    /// Serves from a custom domain (Azure Front Door), e.g. `login.contoso.com`, or from a
    /// full base URL such as `http://127.0.0.1:8080` (loopback only for `http`), as the fake
    /// tenant does.
    pub fn custom_domain(mut self, domain: &str) -> Self {
        self.custom_domain = Some(domain.to_owned());
        self
    }

    /// Selects the national cloud. A tenant given as `*.partner.onmschina.cn` implies China.
    pub fn cloud(mut self, cloud: Cloud) -> Self {
        self.cloud = Some(cloud);
        self
    }

    /// Where the policy goes in the URL.
    pub fn policy_form(mut self, form: PolicyForm) -> Self {
        self.policy_form = form;
        self
    }

    /// Validates everything and builds the URLs.
    ///
    /// # Errors
    /// [`Error::Config`] if the tenant, tenant ID, policy or domain is not valid, or if only
    /// a tenant GUID is known and there is no custom domain to serve it from.
    pub fn build(self) -> Result<Authority> {
        let policy = Policy::new(&self.policy)?;
        let tenant = Tenant::parse(&self.tenant)?;
        let cloud = self.cloud.or(tenant.implied_cloud).unwrap_or_default();
        let tenant_id = match self.tenant_id.as_deref() {
            Some(id) => Some(parse_guid(id)?),
            None => tenant.id.clone(),
        };

        let base = match self.custom_domain.as_deref() {
            Some(domain) => parse_custom_domain(domain)?,
            None => {
                let name = tenant.name.as_deref().ok_or_else(|| {
                    Error::config(
                        "a tenant GUID alone does not name the b2clogin host: give the tenant name too (Authority::builder(\"contoso\", ..).tenant_id(guid)) or a custom domain",
                    )
                })?;
                let host = format!("https://{name}.{}/", cloud.login_domain());
                Url::parse(&host)
                    .map_err(|e| Error::config(format!("tenant {name:?} does not make a valid host: {e}")))?
            }
        };
        let tenant_segment = match (tenant_id, &tenant.name) {
            (Some(id), _) => id,
            (None, Some(name)) => format!("{name}.{}", cloud.tenant_domain()),
            (None, None) => return Err(Error::config("tenant is missing")),
        };

        let endpoint = |tail: &[&str]| -> Result<Url> {
            let mut url = base.clone();
            {
                let mut segments = url
                    .path_segments_mut()
                    .map_err(|()| Error::config("custom domain must be an http(s) URL"))?;
                segments.pop_if_empty();
                match self.policy_form {
                    PolicyForm::Path => segments.push(&tenant_segment).push(policy.as_str()),
                    PolicyForm::Query => segments.push(&tenant_segment),
                    PolicyForm::Tfp => segments.push("tfp").push(&tenant_segment).push(policy.as_str()),
                };
                segments.extend(tail);
            }
            if self.policy_form == PolicyForm::Query {
                url.query_pairs_mut().append_pair("p", policy.as_str());
            }
            Ok(url)
        };
        Ok(Authority {
            token_endpoint: endpoint(&["oauth2", "v2.0", "token"])?,
            metadata_endpoint: Some(endpoint(&["v2.0", ".well-known", "openid-configuration"])?),
            policy: Some(policy),
        })
    }
}

/// A tenant as the caller wrote it: a name or domain (`name`), or a GUID (`id`).
struct Tenant {
    name: Option<String>,
    id: Option<String>,
    implied_cloud: Option<Cloud>,
}

impl Tenant {
    fn parse(input: &str) -> Result<Self> {
        let lowered = input.trim().to_ascii_lowercase();
        if let Ok(id) = parse_guid(&lowered) {
            return Ok(Self {
                name: None,
                id: Some(id),
                implied_cloud: None,
            });
        }
        let (name, implied_cloud) = [
            (".onmicrosoft.com", Some(Cloud::Global)),
            (".b2clogin.com", Some(Cloud::Global)),
            (".partner.onmschina.cn", Some(Cloud::China)),
            (".b2clogin.cn", Some(Cloud::China)),
        ]
        .iter()
        .find_map(|(suffix, cloud)| lowered.strip_suffix(suffix).map(|name| (name.to_owned(), *cloud)))
        .unwrap_or((lowered.clone(), None));
        let valid = !name.is_empty()
            && name.len() <= 63
            && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
            && !name.starts_with('-')
            && !name.ends_with('-');
        if !valid {
            return Err(Error::config(format!(
                "tenant {input:?} is not valid: use the tenant name (contoso), its domain (contoso.onmicrosoft.com) or its GUID"
            )));
        }
        Ok(Self {
            name: Some(name),
            id: None,
            implied_cloud,
        })
    }
}

fn parse_guid(input: &str) -> Result<String> {
    let input = input.trim();
    // Only the hyphenated 36-character form B2C prints: other uuid spellings are accepted by
    // the uuid crate but would be a surprising way to write a tenant ID.
    if input.len() != 36 {
        return Err(Error::config(format!(
            "tenant ID {input:?} is not a GUID like 00000000-0000-0000-0000-000000000000"
        )));
    }
    uuid::Uuid::parse_str(input)
        .map(|id| id.hyphenated().to_string())
        .map_err(|_| {
            Error::config(format!(
                "tenant ID {input:?} is not a GUID like 00000000-0000-0000-0000-000000000000"
            ))
        })
}

fn parse_custom_domain(domain: &str) -> Result<Url> {
    let domain = domain.trim();
    let with_scheme = if domain.contains("://") {
        domain.to_owned()
    } else {
        format!("https://{domain}")
    };
    let url = Url::parse(&with_scheme)
        .map_err(|e| Error::config(format!("custom domain {domain:?} is not a host name or base URL: {e}")))?;
    require_secure(&url, "custom domain")?;
    if url.query().is_some() || url.fragment().is_some() {
        return Err(Error::config("custom domain must not have a query or fragment"));
    }
    Ok(url)
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
                    .custom_domain("login.contoso.com")
                    .policy_form(PolicyForm::Query)
            ),
            format!("https://login.contoso.com/{guid}/oauth2/v2.0/token?p=B2C_1_ropc")
        );
        assert_eq!(
            token_url(Authority::builder("fabrikam.partner.onmschina.cn", "B2C_1_ropc").policy_form(PolicyForm::Query)),
            "https://fabrikam.b2clogin.cn/fabrikam.partner.onmschina.cn/oauth2/v2.0/token?p=B2C_1_ropc"
        );
        assert_eq!(
            token_url(Authority::builder("contoso", "B2C_1_ropc").custom_domain("http://127.0.0.1:8080/base/")),
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
                .custom_domain("http://login.contoso.com")
                .build(),
            Authority::builder("contoso", "B2C_1_x")
                .custom_domain("ftp://login.contoso.com")
                .build(),
            Authority::builder("contoso", "B2C_1_x")
                .custom_domain("https://u:p@login.contoso.com")
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
