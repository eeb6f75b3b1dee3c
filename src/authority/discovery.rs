//! Any OpenID provider from its discovery document (OpenID Connect Discovery 1.0): the token
//! endpoint, issuer and JWKS URI, with the issuer checked against the document's URL.

use url::Url;

use super::{kind_of, require_secure, Authority};
use crate::error::{Error, Result};
use crate::net::{document_string, get_json, http_client, Document, DEFAULT_CONNECT_TIMEOUT, DEFAULT_TIMEOUT};

/// What a discovery document says beyond the token endpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Discovered {
    issuer: String,
    jwks_uri: Option<Url>,
}

impl Authority {
    /// Reads the discovery document at `metadata_url` (`…/.well-known/openid-configuration`)
    /// with the SDK's own HTTP client (no redirects followed, timeouts, a body cap).
    ///
    /// The document is read once: build every client from clones of the returned
    /// `Authority` (one fetch for all of them). The issuer must belong to the URL: equal to
    /// it without `/.well-known/openid-configuration` (OpenID Connect Discovery §4.3), or, as
    /// Entra and External ID publish for a tenant named by domain, the same tenant by GUID
    /// (`https://{host}/{GUID}/v2.0`, and External ID's `https://{GUID}.ciamlogin.com/{GUID}/v2.0`).
    ///
    /// # Errors
    /// [`Error::Config`] for a URL that is not `https://` (loopback `http://` aside) or an
    /// issuer that does not belong to it; transport errors and [`Error::UnexpectedResponse`]
    /// when the document cannot be fetched or lacks `issuer`/`token_endpoint`.
    pub async fn discover(metadata_url: &str) -> Result<Self> {
        let url = parse_metadata_url(metadata_url)?;
        let http = http_client(DEFAULT_TIMEOUT, DEFAULT_CONNECT_TIMEOUT, &url, Vec::new(), false)?;
        Self::discover_at(url, &http).await
    }

    /// As [`Authority::discover`], with your `reqwest::Client` (a private CA, a proxy). It
    /// should follow no redirects.
    ///
    /// # Errors
    /// As [`Authority::discover`].
    pub async fn discover_with(metadata_url: &str, http: &reqwest::Client) -> Result<Self> {
        Self::discover_at(parse_metadata_url(metadata_url)?, http).await
    }

    async fn discover_at(metadata_url: Url, http: &reqwest::Client) -> Result<Self> {
        let document = get_json(http, &metadata_url, DEFAULT_TIMEOUT, Document::Metadata).await?;
        let text = |field| document_string(&document, field).map_err(|e| Document::Metadata.error(&metadata_url, e));
        let issuer = text("issuer")?;
        check_issuer(&metadata_url, &issuer)?;
        let token_endpoint = text("token_endpoint")?;
        let mut authority = Self::from_token_url(&token_endpoint)?;
        let jwks_uri = match text("jwks_uri") {
            Ok(uri) => {
                let uri = Url::parse(&uri).map_err(|e| Error::config(format!("jwks_uri does not parse: {e}")))?;
                require_secure(&uri, "jwks_uri")?;
                Some(uri)
            }
            Err(_) => None,
        };
        // The document's URL tells the kind better than a token URL with `?p=` lower-cased.
        authority.kind = kind_of(&metadata_url, authority.policy.is_some());
        authority.metadata_endpoint = Some(metadata_url);
        authority.discovered = Some(Discovered { issuer, jwks_uri });
        tracing::debug!(token_endpoint = %authority.token_endpoint, "discovered the authority");
        Ok(authority)
    }

    /// The issuer from the discovery document, for an authority built by
    /// [`Authority::discover`].
    #[must_use]
    pub fn issuer(&self) -> Option<&str> {
        self.discovered.as_ref().map(|d| d.issuer.as_str())
    }

    /// The JWKS URI from the discovery document, for an authority built by
    /// [`Authority::discover`].
    #[must_use]
    pub fn jwks_uri(&self) -> Option<&Url> {
        self.discovered.as_ref().and_then(|d| d.jwks_uri.as_ref())
    }
}

fn parse_metadata_url(metadata_url: &str) -> Result<Url> {
    let url = Url::parse(metadata_url.trim())
        .map_err(|e| Error::config(format!("metadata URL {metadata_url:?} does not parse: {e}")))?;
    require_secure(&url, "metadata URL")?;
    Ok(url)
}

/// The issuer must be the metadata URL's own prefix, or the same tenant by GUID on the same
/// host (External ID: on the GUID's own `ciamlogin.com` host).
pub(crate) fn check_issuer(metadata_url: &Url, issuer: &str) -> Result<()> {
    let mut expected = metadata_url.clone();
    expected.set_query(None);
    let expected = expected.as_str().trim_end_matches('/');
    let prefix = expected
        .strip_suffix("/.well-known/openid-configuration")
        .unwrap_or(expected);
    let trimmed = issuer.trim_end_matches('/');
    if trimmed == prefix {
        return Ok(());
    }
    let refuse = || {
        Error::config(format!(
            "the discovery document's issuer {issuer:?} does not belong to {metadata_url}: a document must name its own URL as issuer (OpenID Connect Discovery §4.3)"
        ))
    };
    let issuer_url = Url::parse(issuer).map_err(|_| refuse())?;
    // B2C's issuers end in a slash (`https://{tenant}.b2clogin.com/{guid}/v2.0/`): one trailing
    // slash is the same issuer, an empty segment elsewhere is not.
    let path = issuer_url.path().strip_suffix('/').unwrap_or(issuer_url.path());
    let segments: Vec<&str> = path.split('/').skip(1).collect();
    let metadata_path = metadata_url.path().to_ascii_lowercase();
    let guid = match segments.as_slice() {
        [guid, "v2.0"] => *guid,
        // B2C's `tfp` form names the tenant by GUID and the policy the document is for.
        ["tfp", guid, policy, "v2.0"]
            if metadata_path.contains(&format!("/{}/", policy.to_ascii_lowercase()))
                || metadata_url
                    .query_pairs()
                    .any(|(name, value)| name == "p" && value.eq_ignore_ascii_case(policy)) =>
        {
            *guid
        }
        _ => return Err(refuse()),
    };
    let guid_ok = guid.len() == 36 && uuid::Uuid::parse_str(guid).is_ok();
    let metadata_host = metadata_url.host_str().unwrap_or_default().to_ascii_lowercase();
    let issuer_host = issuer_url.host_str().unwrap_or_default().to_ascii_lowercase();
    let host_ok = issuer_host == metadata_host
        || (metadata_host.ends_with(".ciamlogin.com")
            && issuer_host == format!("{}.ciamlogin.com", guid.to_ascii_lowercase()));
    if guid_ok && host_ok && issuer_url.scheme() == metadata_url.scheme() {
        Ok(())
    } else {
        Err(refuse())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn url(s: &str) -> Url {
        Url::parse(s).expect("url")
    }

    #[test]
    fn issuers_must_belong_to_the_document() {
        let guid = "11111111-2222-4333-8444-555555555555";
        let ciam = url("https://contoso.ciamlogin.com/contoso.onmicrosoft.com/v2.0/.well-known/openid-configuration");
        assert!(check_issuer(&ciam, "https://contoso.ciamlogin.com/contoso.onmicrosoft.com/v2.0").is_ok());
        assert!(check_issuer(&ciam, &format!("https://{guid}.ciamlogin.com/{guid}/v2.0")).is_ok());
        assert!(check_issuer(
            &ciam,
            &format!("https://{guid}.ciamlogin.com/00000000-2222-4333-8444-555555555555/v2.0")
        )
        .is_err());
        assert!(check_issuer(&ciam, &format!("https://evil.example/{guid}/v2.0")).is_err());
        let entra = url("https://login.microsoftonline.com/contoso.com/v2.0/.well-known/openid-configuration");
        assert!(check_issuer(&entra, &format!("https://login.microsoftonline.com/{guid}/v2.0")).is_ok());
        assert!(check_issuer(&entra, &format!("https://login.microsoftonline.com/{guid}/v2.0/x")).is_err());
        assert!(check_issuer(&entra, "https://login.microsoftonline.com/contoso.com/v2.0").is_ok());
        assert!(check_issuer(&entra, "https://login.microsoftonline.com/other.com/v2.0").is_err());
        let generic = url("https://idp.example.com/.well-known/openid-configuration");
        assert!(check_issuer(&generic, "https://idp.example.com").is_ok());
        assert!(check_issuer(&generic, "https://idp.example.com/").is_ok());
        assert!(check_issuer(&generic, "https://other.example.com").is_err());
    }

    #[test]
    fn b2c_issuers_end_in_a_slash_and_may_name_the_policy() {
        let guid = "11111111-2222-4333-8444-555555555555";
        for metadata in [
            "https://contoso.b2clogin.com/contoso.onmicrosoft.com/B2C_1_signin/v2.0/.well-known/openid-configuration",
            "https://contoso.b2clogin.com/contoso.onmicrosoft.com/v2.0/.well-known/openid-configuration?p=b2c_1_signin",
            "https://contoso.b2clogin.com/tfp/contoso.onmicrosoft.com/B2C_1_signin/v2.0/.well-known/openid-configuration",
        ] {
            let metadata = url(metadata);
            assert!(check_issuer(&metadata, &format!("https://contoso.b2clogin.com/{guid}/v2.0/")).is_ok());
            assert!(check_issuer(&metadata, &format!("https://contoso.b2clogin.com/tfp/{guid}/b2c_1_signin/v2.0/")).is_ok());
            assert!(check_issuer(&metadata, &format!("https://contoso.b2clogin.com/tfp/{guid}/B2C_1_other/v2.0/")).is_err());
            assert!(check_issuer(&metadata, &format!("https://contoso.b2clogin.com/{guid}//v2.0/")).is_err());
            assert!(check_issuer(&metadata, &format!("https://evil.b2clogin.com/{guid}/v2.0/")).is_err());
        }
    }
}
