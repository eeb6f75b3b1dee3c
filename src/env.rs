//! Configuration from environment variables, with the same names the `b2c-token` command and
//! the quickstart use, so one set of variables configures all three.
//!
//! The variables are listed where docs.rs shows them: [`ClientBuilder::from_env`].

use crate::authority::{Authority, AuthorityKind};
use crate::client::{Client, ClientBuilder};
use crate::credential::{ClientCertificate, FederatedTokenFile};
use crate::error::{Error, Result};

impl Authority {
    /// The authority described by `B2C_TOKEN_URL`, or by `B2C_TENANT` + `B2C_POLICY` with the
    /// optional `B2C_TENANT_ID`, `B2C_DOMAIN`, `B2C_CLOUD` and `B2C_POLICY_FORM` (every
    /// variable: [`ClientBuilder::from_env`]).
    ///
    /// # Errors
    /// [`Error::Config`] naming the variable that is missing or wrong.
    pub fn from_env() -> Result<Self> {
        Self::from_vars(|name| std::env::var(name).ok())
    }

    /// As [`Authority::from_env`], reading variables through `var` (for tests and for
    /// configuration systems other than the process environment).
    ///
    /// ```
    /// let vars = |name: &str| match name {
    ///     "B2C_TENANT" => Some("contoso".to_owned()),
    ///     "B2C_POLICY" => Some("B2C_1_ropc".to_owned()),
    ///     "B2C_POLICY_FORM" => Some("query".to_owned()),
    ///     _ => None,
    /// };
    /// let authority = b2c_token::Authority::from_vars(vars)?;
    /// assert!(authority.token_endpoint().as_str().ends_with("/oauth2/v2.0/token?p=B2C_1_ropc"));
    /// # Ok::<(), b2c_token::Error>(())
    /// ```
    ///
    /// # Errors
    /// As [`Authority::from_env`].
    pub fn from_vars(var: impl Fn(&str) -> Option<String>) -> Result<Self> {
        let get = |name: &str| var(name).filter(|v| !v.trim().is_empty());
        if let Some(url) = get("B2C_TOKEN_URL") {
            return Self::from_token_url(&url);
        }
        let kind = match get("B2C_AUTHORITY") {
            Some(kind) => kind.parse::<AuthorityKind>()?,
            // Azure's variable alone names a workforce (Entra ID) tenant.
            None if get("B2C_TENANT").is_none() && get("AZURE_TENANT_ID").is_some() => AuthorityKind::Entra,
            None => AuthorityKind::B2c,
        };
        if kind != AuthorityKind::B2c {
            return entra_from_vars(kind, &get);
        }
        let tenant =
            get("B2C_TENANT").ok_or_else(|| Error::config("set B2C_TENANT and B2C_POLICY, or B2C_TOKEN_URL"))?;
        let policy =
            get("B2C_POLICY").ok_or_else(|| Error::config("set B2C_POLICY (e.g. B2C_1_ropc) with B2C_TENANT"))?;
        let mut builder = Self::builder(&tenant, &policy);
        if let Some(id) = get("B2C_TENANT_ID") {
            builder = builder.tenant_id(&id);
        }
        if let Some(domain) = get("B2C_DOMAIN") {
            builder = builder.base_url(&domain);
        }
        if let Some(cloud) = get("B2C_CLOUD") {
            builder = builder.cloud(cloud.parse()?);
        }
        if let Some(form) = get("B2C_POLICY_FORM") {
            builder = builder.policy_form(form.parse()?);
        }
        builder.build()
    }
}

/// An External ID or Entra authority from `B2C_TENANT` (or `AZURE_TENANT_ID`),
/// `B2C_TENANT_ID`, `B2C_DOMAIN` (or `AZURE_AUTHORITY_HOST`) and `B2C_CLOUD`.
fn entra_from_vars(kind: AuthorityKind, get: &dyn Fn(&str) -> Option<String>) -> Result<Authority> {
    let tenant = get("B2C_TENANT").or_else(|| get("AZURE_TENANT_ID")).ok_or_else(|| {
        Error::config("give the tenant (B2C_TENANT, AZURE_TENANT_ID or --tenant): its name, domain or GUID")
    })?;
    let mut builder = if kind == AuthorityKind::ExternalId {
        Authority::external_id_builder(&tenant)
    } else {
        Authority::entra_builder(&tenant)
    };
    if let Some(id) = get("B2C_TENANT_ID") {
        builder = builder.tenant_id(&id);
    }
    if let Some(base) = get("B2C_DOMAIN").or_else(|| get("AZURE_AUTHORITY_HOST")) {
        builder = builder.base_url(&base);
    }
    if let Some(cloud) = get("B2C_CLOUD") {
        builder = builder.cloud(cloud.parse()?);
    }
    builder.build()
}

impl ClientBuilder {
    /// A client builder from the environment: the authority as [`Authority::from_env`],
    /// `B2C_CLIENT_ID`, and `B2C_CLIENT_SECRET` if set. Chain more settings, then `build()`.
    /// The same variables configure the `b2c-token` command and the quickstart.
    ///
    /// | variable | meaning |
    /// |---|---|
    /// | `B2C_TOKEN_URL` | a token endpoint used as given (instead of tenant + policy) |
    /// | `B2C_TENANT` | tenant: `contoso`, `contoso.onmicrosoft.com` or a GUID |
    /// | `B2C_POLICY` | user flow or custom policy, e.g. `B2C_1_ropc` |
    /// | `B2C_TENANT_ID` | tenant GUID to put in the path |
    /// | `B2C_DOMAIN` | custom domain (Azure Front Door), e.g. `login.contoso.com`, or a base URL |
    /// | `B2C_CLOUD` | `global` (default) or `china` |
    /// | `B2C_POLICY_FORM` | `path` (default), `query` (`?p=`) or `tfp` |
    /// | `B2C_CLIENT_ID` | application (client) ID |
    /// | `B2C_CLIENT_SECRET` | client secret (confidential clients only) |
    /// | `B2C_AUTHORITY` | `b2c` (default), `external-id` or `entra`: which service `B2C_TENANT` is in |
    ///
    /// Azure's own variables, as `azure_identity` and Kubernetes workload identity set them,
    /// fill in what the `B2C_*` ones leave out:
    ///
    /// | variable | meaning |
    /// |---|---|
    /// | `AZURE_TENANT_ID` | the tenant (alone, it means an Entra ID authority) |
    /// | `AZURE_CLIENT_ID` | application (client) ID |
    /// | `AZURE_CLIENT_SECRET` | client secret |
    /// | `AZURE_AUTHORITY_HOST` | Entra's sign-in host, e.g. `https://login.microsoftonline.us/` |
    /// | `AZURE_FEDERATED_TOKEN_FILE` | workload identity: a client assertion file ([`crate::credential::FederatedTokenFile`]) |
    /// | `AZURE_CLIENT_CERTIFICATE_PATH` | a PEM file with the certificate and its RSA key ([`crate::credential::ClientCertificate`]) |
    ///
    /// # Errors
    /// [`Error::Config`] naming the variable that is missing or wrong.
    pub fn from_env() -> Result<Self> {
        Self::from_vars(|name| std::env::var(name).ok())
    }

    /// As [`ClientBuilder::from_env`], reading variables through `var`.
    ///
    /// # Errors
    /// As [`ClientBuilder::from_env`].
    pub fn from_vars(var: impl Fn(&str) -> Option<String>) -> Result<Self> {
        let get = |name: &str| var(name).filter(|v| !v.trim().is_empty());
        let authority = Authority::from_vars(&var)?;
        let client_id = get("B2C_CLIENT_ID")
            .or_else(|| get("AZURE_CLIENT_ID"))
            .ok_or_else(|| Error::config("set B2C_CLIENT_ID (or AZURE_CLIENT_ID) to the application (client) ID"))?;
        let mut builder = Client::builder(authority, &client_id);
        if let Some(secret) = get("B2C_CLIENT_SECRET").or_else(|| get("AZURE_CLIENT_SECRET")) {
            builder = builder.client_secret(secret);
        } else if let Some(path) = get("AZURE_CLIENT_CERTIFICATE_PATH") {
            let pem = std::fs::read(&path)
                .map_err(|e| Error::config(format!("AZURE_CLIENT_CERTIFICATE_PATH {path:?} cannot be read: {e}")))?;
            builder = builder.client_certificate(ClientCertificate::from_pem(&pem, &pem)?);
        } else if let Some(path) = get("AZURE_FEDERATED_TOKEN_FILE") {
            builder = builder.client_assertion(FederatedTokenFile::new(path));
        }
        Ok(builder)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars(pairs: &'static [(&'static str, &'static str)]) -> impl Fn(&str) -> Option<String> {
        move |name| pairs.iter().find(|(n, _)| *n == name).map(|(_, v)| (*v).to_owned())
    }

    #[test]
    fn every_variable_is_used() {
        let authority = Authority::from_vars(vars(&[
            ("B2C_TENANT", "fabrikam"),
            ("B2C_POLICY", "B2C_1_x"),
            ("B2C_CLOUD", "china"),
            ("B2C_POLICY_FORM", "tfp"),
            ("B2C_TENANT_ID", "00000000-0000-0000-0000-000000000001"),
        ]))
        .unwrap();
        assert_eq!(
            authority.token_endpoint().as_str(),
            "https://fabrikam.b2clogin.cn/tfp/00000000-0000-0000-0000-000000000001/B2C_1_x/oauth2/v2.0/token"
        );
        let custom = Authority::from_vars(vars(&[
            ("B2C_TENANT", "contoso"),
            ("B2C_POLICY", "p1"),
            ("B2C_DOMAIN", "login.contoso.com"),
        ]))
        .unwrap();
        assert!(custom
            .token_endpoint()
            .as_str()
            .starts_with("https://login.contoso.com/contoso.onmicrosoft.com/p1/"));
        let url = Authority::from_vars(vars(&[
            ("B2C_TOKEN_URL", "https://idp.example.com/token"),
            ("B2C_TENANT", "ignored"),
        ]))
        .unwrap();
        assert_eq!(url.token_endpoint().as_str(), "https://idp.example.com/token");
    }

    #[test]
    fn azure_variables_describe_entra_and_external_id() {
        let entra = Authority::from_vars(vars(&[
            ("AZURE_TENANT_ID", "11111111-2222-4333-8444-555555555555"),
            ("AZURE_AUTHORITY_HOST", "https://login.microsoftonline.us/"),
        ]))
        .unwrap();
        assert_eq!(entra.kind(), AuthorityKind::Entra);
        assert_eq!(
            entra.token_endpoint().as_str(),
            "https://login.microsoftonline.us/11111111-2222-4333-8444-555555555555/oauth2/v2.0/token"
        );
        let ciam = Authority::from_vars(vars(&[("B2C_AUTHORITY", "external-id"), ("B2C_TENANT", "contoso")])).unwrap();
        assert_eq!(
            ciam.token_endpoint().as_str(),
            "https://contoso.ciamlogin.com/contoso.onmicrosoft.com/oauth2/v2.0/token"
        );
        let federated = ClientBuilder::from_vars(vars(&[
            ("AZURE_TENANT_ID", "contoso.com"),
            ("AZURE_CLIENT_ID", "id"),
            (
                "AZURE_FEDERATED_TOKEN_FILE",
                "/var/run/secrets/azure/tokens/azure-identity-token",
            ),
        ]))
        .unwrap()
        .build()
        .unwrap();
        assert!(federated.is_confidential());
        assert_eq!(federated.authority().kind(), AuthorityKind::Entra);
        let err = Authority::from_vars(vars(&[("B2C_AUTHORITY", "okta"), ("B2C_TENANT", "x")])).unwrap_err();
        assert!(err.to_string().contains("okta"), "{err}");
    }

    #[test]
    fn missing_or_wrong_variables_are_named() {
        let err = Authority::from_vars(vars(&[])).unwrap_err();
        assert!(err.to_string().contains("B2C_TENANT"), "{err}");
        let err = Authority::from_vars(vars(&[("B2C_TENANT", "contoso")])).unwrap_err();
        assert!(err.to_string().contains("B2C_POLICY"), "{err}");
        let err = Authority::from_vars(vars(&[
            ("B2C_TENANT", "contoso"),
            ("B2C_POLICY", "p"),
            ("B2C_CLOUD", "mars"),
        ]))
        .unwrap_err();
        assert!(err.to_string().contains("mars"), "{err}");
        let err = ClientBuilder::from_vars(vars(&[("B2C_TENANT", "contoso"), ("B2C_POLICY", "p")])).unwrap_err();
        assert!(err.to_string().contains("B2C_CLIENT_ID"), "{err}");
        let client = ClientBuilder::from_vars(vars(&[
            ("B2C_TENANT", "contoso"),
            ("B2C_POLICY", "p"),
            ("B2C_CLIENT_ID", "id"),
            ("B2C_CLIENT_SECRET", "s"),
        ]))
        .unwrap()
        .build()
        .unwrap();
        assert!(client.is_confidential());
    }
}
