//! Microsoft Entra External ID (`{tenant}.ciamlogin.com`, B2C's successor) and Microsoft
//! Entra ID (`login.microsoftonline.com` and the sovereign clouds): tenant → token and
//! metadata URLs. No policies: one authorization server per tenant.

use url::Url;

use super::b2c::{parse_custom_domain, parse_guid};
use super::{endpoints, is_dns_label, Authority, AuthorityKind, Cloud};
use crate::error::{Error, Result};

/// Configures an Entra External ID or Entra ID authority; start from
/// [`Authority::external_id_builder`] or [`Authority::entra_builder`].
///
/// ```
/// use b2c_token::{Authority, authority::Cloud};
///
/// let ciam = Authority::external_id("contoso")?;
/// assert_eq!(
///     ciam.token_endpoint().as_str(),
///     "https://contoso.ciamlogin.com/contoso.onmicrosoft.com/oauth2/v2.0/token"
/// );
/// let by_guid = Authority::external_id("11111111-2222-4333-8444-555555555555")?;
/// assert_eq!(
///     by_guid.token_endpoint().as_str(),
///     "https://11111111-2222-4333-8444-555555555555.ciamlogin.com/11111111-2222-4333-8444-555555555555/oauth2/v2.0/token"
/// );
/// let custom = Authority::external_id_builder("11111111-2222-4333-8444-555555555555")
///     .base_url("login.contoso.com")
///     .build()?;
/// assert_eq!(
///     custom.token_endpoint().as_str(),
///     "https://login.contoso.com/11111111-2222-4333-8444-555555555555/oauth2/v2.0/token"
/// );
///
/// let entra = Authority::entra_builder("contoso.onmicrosoft.com").cloud(Cloud::UsGovernment).build()?;
/// assert_eq!(
///     entra.token_endpoint().as_str(),
///     "https://login.microsoftonline.us/contoso.onmicrosoft.com/oauth2/v2.0/token"
/// );
/// # Ok::<(), b2c_token::Error>(())
/// ```
#[derive(Debug, Clone)]
#[must_use]
pub struct EntraAuthorityBuilder {
    kind: AuthorityKind,
    tenant: String,
    tenant_id: Option<String>,
    base_url: Option<String>,
    cloud: Cloud,
}

impl Authority {
    /// The Entra External ID authority of `tenant` (name, `name.onmicrosoft.com`, or GUID):
    /// `https://{tenant}.ciamlogin.com/{tenant}.onmicrosoft.com/oauth2/v2.0/token`.
    ///
    /// # Errors
    /// [`Error::Config`] if the tenant is not a valid name or GUID.
    pub fn external_id(tenant: &str) -> Result<Self> {
        Self::external_id_builder(tenant).build()
    }

    /// A builder for External ID with a tenant GUID in the path or a custom URL domain.
    pub fn external_id_builder(tenant: &str) -> EntraAuthorityBuilder {
        EntraAuthorityBuilder::new(AuthorityKind::ExternalId, tenant)
    }

    /// The Entra ID authority of `tenant` (GUID or domain such as `contoso.onmicrosoft.com`;
    /// a bare name means `{name}.onmicrosoft.com`):
    /// `https://login.microsoftonline.com/{tenant}/oauth2/v2.0/token`.
    ///
    /// # Errors
    /// [`Error::Config`] if the tenant is not a valid GUID or domain.
    pub fn entra(tenant: &str) -> Result<Self> {
        Self::entra_builder(tenant).build()
    }

    /// A builder for Entra ID in a sovereign cloud or behind another authority host.
    pub fn entra_builder(tenant: &str) -> EntraAuthorityBuilder {
        EntraAuthorityBuilder::new(AuthorityKind::Entra, tenant)
    }
}

impl EntraAuthorityBuilder {
    fn new(kind: AuthorityKind, tenant: &str) -> Self {
        Self {
            kind,
            tenant: tenant.trim().to_ascii_lowercase(),
            tenant_id: None,
            base_url: None,
            cloud: Cloud::Global,
        }
    }

    /// Puts the tenant GUID in the path (External ID's custom URL domains require it).
    pub fn tenant_id(mut self, guid: &str) -> Self {
        self.tenant_id = Some(guid.to_owned());
        self
    }

    /// Another base URL: an External ID custom URL domain (`login.contoso.com`), Entra's
    /// `AZURE_AUTHORITY_HOST` (`https://login.microsoftonline.us/`), or a loopback URL (tests).
    pub fn base_url(mut self, url: &str) -> Self {
        self.base_url = Some(url.to_owned());
        self
    }

    /// The national cloud (Entra ID): its sign-in host. Ignored with [`Self::base_url`].
    pub fn cloud(mut self, cloud: Cloud) -> Self {
        self.cloud = cloud;
        self
    }

    /// Validates the tenant and builds the URLs.
    ///
    /// # Errors
    /// [`Error::Config`] if the tenant, tenant ID or base URL is not valid.
    pub fn build(self) -> Result<Authority> {
        let guid = parse_guid(&self.tenant).ok();
        let tenant_id = self.tenant_id.as_deref().map(parse_guid).transpose()?;
        let name = if guid.is_some() {
            None
        } else {
            Some(parse_domain(&self.tenant, self.kind)?)
        };
        let tenant_segment = match (&tenant_id, &guid, &name) {
            (Some(id), _, _) | (None, Some(id), _) => id.clone(),
            (None, None, Some(domain)) => domain.clone(),
            (None, None, None) => return Err(Error::config("tenant is missing")),
        };
        let base = match self.base_url.as_deref() {
            Some(base) => parse_custom_domain(base)?,
            None => {
                let host = match self.kind {
                    AuthorityKind::ExternalId => {
                        // The subdomain is the tenant's name, or its GUID when only that is known.
                        let sub = name
                            .as_deref()
                            .and_then(|d| d.split('.').next())
                            .or(guid.as_deref())
                            .unwrap_or_default();
                        format!("{sub}.ciamlogin.com")
                    }
                    _ => self.cloud.entra_host().to_owned(),
                };
                Url::parse(&format!("https://{host}/"))
                    .map_err(|e| Error::config(format!("tenant does not make a valid host: {e}")))?
            }
        };
        let (token_endpoint, metadata_endpoint) = endpoints(&base, &[&tenant_segment], None)?;
        Ok(Authority {
            token_endpoint,
            metadata_endpoint: Some(metadata_endpoint),
            policy: None,
            kind: self.kind,
            discovered: None,
        })
    }
}

/// A tenant domain: `contoso` becomes `contoso.onmicrosoft.com`; `contoso.com` stays.
fn parse_domain(input: &str, kind: AuthorityKind) -> Result<String> {
    let labels_ok = input.len() <= 253 && input.split('.').all(is_dns_label);
    if !labels_ok {
        let what = if kind == AuthorityKind::ExternalId {
            "External ID"
        } else {
            "Entra"
        };
        return Err(Error::config(format!(
            "{what} tenant {input:?} is not valid: use the tenant's name (contoso), a domain (contoso.onmicrosoft.com) or its GUID"
        )));
    }
    let domain = if input.contains('.') {
        input.to_owned()
    } else {
        format!("{input}.onmicrosoft.com")
    };
    if kind == AuthorityKind::ExternalId && domain.ends_with(".ciamlogin.com") {
        // `contoso.ciamlogin.com` names the host; the tenant is contoso.onmicrosoft.com.
        let name = domain.trim_end_matches(".ciamlogin.com");
        return Ok(format!("{name}.onmicrosoft.com"));
    }
    Ok(domain)
}
