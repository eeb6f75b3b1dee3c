//! Azure AD B2C authorities: tenant (name, domain or GUID) + policy → token and metadata URLs
//! in every form B2C serves: path, `?p=`, `tfp`, custom domains, the China cloud.
//!
//! Inputs are validated before they enter a URL, and URLs are assembled from path segments
//! so that nothing the caller passes can change the URL's shape.

use std::fmt;
use std::hash::{Hash, Hasher};

use url::Url;

use super::{endpoints, is_dns_label, require_secure, Authority, AuthorityKind};
use crate::error::{Error, Result};

/// Which national cloud hosts the tenant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub enum Cloud {
    /// The global cloud: `{tenant}.b2clogin.com` and `{tenant}.onmicrosoft.com`.
    #[default]
    Global,
    /// Azure China (21Vianet): `{tenant}.b2clogin.cn` and `{tenant}.partner.onmschina.cn`;
    /// Entra ID at `login.chinacloudapi.cn`.
    China,
    /// Azure US Government: Entra ID at `login.microsoftonline.us` (B2C is not offered there).
    UsGovernment,
}

impl Cloud {
    const fn login_domain(self) -> Option<&'static str> {
        match self {
            Self::Global => Some("b2clogin.com"),
            Self::China => Some("b2clogin.cn"),
            Self::UsGovernment => None,
        }
    }

    pub(super) const fn tenant_domain(self) -> &'static str {
        match self {
            Self::Global => "onmicrosoft.com",
            Self::China => "partner.onmschina.cn",
            Self::UsGovernment => "onmicrosoft.us",
        }
    }

    /// Entra ID's sign-in host in this cloud.
    pub(super) const fn entra_host(self) -> &'static str {
        match self {
            Self::Global => "login.microsoftonline.com",
            Self::China => "login.chinacloudapi.cn",
            Self::UsGovernment => "login.microsoftonline.us",
        }
    }
}

/// `global` (or `public`), `china` (or `cn`) and `usgovernment`, case-insensitively: the one parser behind
/// `B2C_CLOUD` and the command's `--cloud`.
///
/// ```
/// use b2c_token::authority::Cloud;
/// assert_eq!("China".parse::<Cloud>()?, Cloud::China);
/// assert!("mars".parse::<Cloud>().is_err());
/// # Ok::<(), b2c_token::Error>(())
/// ```
impl std::str::FromStr for Cloud {
    type Err = Error;

    fn from_str(value: &str) -> Result<Self> {
        match value.trim().to_ascii_lowercase().as_str() {
            "global" | "public" => Ok(Self::Global),
            "china" | "cn" => Ok(Self::China),
            "usgovernment" | "us-government" | "usgov" => Ok(Self::UsGovernment),
            other => Err(Error::config(format!(
                "cloud {other:?} is not known: use global, china or usgovernment"
            ))),
        }
    }
}

/// The name [`Cloud`]'s parser reads: `global`, `china`, `usgovernment`.
impl fmt::Display for Cloud {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Global => "global",
            Self::China => "china",
            Self::UsGovernment => "usgovernment",
        })
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

/// `path`, `query` or `tfp`, case-insensitively: the one parser behind `B2C_POLICY_FORM`.
///
/// ```
/// use b2c_token::authority::PolicyForm;
/// assert_eq!("tfp".parse::<PolicyForm>()?, PolicyForm::Tfp);
/// # Ok::<(), b2c_token::Error>(())
/// ```
impl std::str::FromStr for PolicyForm {
    type Err = Error;

    fn from_str(value: &str) -> Result<Self> {
        match value.trim().to_ascii_lowercase().as_str() {
            "path" => Ok(Self::Path),
            "query" => Ok(Self::Query),
            "tfp" => Ok(Self::Tfp),
            other => Err(Error::config(format!(
                "policy form {other:?} is not known: use path, query or tfp"
            ))),
        }
    }
}

/// A B2C policy (user flow or custom policy) name, such as `B2C_1_ropc` or `B2C_1A_signin`.
///
/// Sent exactly as configured, but compared and hashed case-insensitively: B2C itself
/// lower-cases policy names in places (b2c-protocol §1.3).
///
/// ```
/// use b2c_token::authority::Policy;
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

/// Builds a B2C [`Authority`] in any of the URL forms B2C serves. See [`Authority::builder`].
///
/// ```
/// use b2c_token::{Authority, authority::Cloud, authority::PolicyForm};
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
/// let custom = Authority::builder("contoso", "B2C_1_ropc").base_url("login.contoso.com").build()?;
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
    base_url: Option<String>,
    cloud: Option<Cloud>,
    policy_form: PolicyForm,
}

impl AuthorityBuilder {
    pub(super) fn new(tenant: &str, policy: &str) -> Self {
        Self {
            tenant: tenant.to_owned(),
            policy: policy.to_owned(),
            tenant_id: None,
            base_url: None,
            cloud: None,
            policy_form: PolicyForm::Path,
        }
    }

    /// Puts the tenant's GUID in the path instead of `{tenant}.onmicrosoft.com`. The tenant
    /// name is still needed for the `{tenant}.b2clogin.com` host unless a custom domain is set.
    pub fn tenant_id(mut self, guid: &str) -> Self {
        self.tenant_id = Some(guid.to_owned());
        self
    }

    /// Serves from another base URL than `https://{tenant}.b2clogin.com`: a custom domain
    /// (Azure Front Door) given as a host, `login.contoso.com`, or as a URL with a path
    /// prefix, `https://login.contoso.com/b2c`; or a loopback URL such as
    /// `http://127.0.0.1:8080`, as the fake tenant uses (plain `http` only for loopback).
    pub fn base_url(mut self, url: &str) -> Self {
        self.base_url = Some(url.to_owned());
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

        let base = match self.base_url.as_deref() {
            Some(domain) => parse_custom_domain(domain)?,
            None => {
                let name = tenant.name.as_deref().ok_or_else(|| {
                    Error::config(
                        "a tenant GUID alone does not name the b2clogin host: give the tenant name too (Authority::builder(\"contoso\", ..).tenant_id(guid)) or a custom domain",
                    )
                })?;
                let domain = cloud.login_domain().ok_or_else(|| {
                    Error::config("Azure AD B2C is not offered in the US Government cloud: use Cloud::Global or Cloud::China, or a custom domain")
                })?;
                let host = format!("https://{name}.{domain}/");
                Url::parse(&host)
                    .map_err(|e| Error::config(format!("tenant {name:?} does not make a valid host: {e}")))?
            }
        };
        let tenant_segment = match (tenant_id, &tenant.name) {
            (Some(id), _) => id,
            (None, Some(name)) => format!("{name}.{}", cloud.tenant_domain()),
            (None, None) => return Err(Error::config("tenant is missing")),
        };

        let (prefix, query): (Vec<&str>, _) = match self.policy_form {
            PolicyForm::Path => (vec![&tenant_segment, policy.as_str()], None),
            PolicyForm::Query => (vec![&tenant_segment], Some(("p", policy.as_str()))),
            PolicyForm::Tfp => (vec!["tfp", &tenant_segment, policy.as_str()], None),
        };
        let (token_endpoint, metadata_endpoint) = endpoints(&base, &prefix, query)?;
        Ok(Authority {
            token_endpoint,
            metadata_endpoint: Some(metadata_endpoint),
            policy: Some(policy),
            kind: AuthorityKind::B2c,
            discovered: None,
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
        if !is_dns_label(&name) {
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

pub(super) fn parse_guid(input: &str) -> Result<String> {
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

pub(super) fn parse_custom_domain(domain: &str) -> Result<Url> {
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
