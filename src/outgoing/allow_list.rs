//! Which hosts a bearer token may go to, and the per-request scopes extension: shared by every
//! outgoing integration, so that a token for API A never reaches host B whichever client
//! sends it.

#[cfg(any(feature = "reqwest-middleware", feature = "tower"))]
use crate::error::Error;
use crate::scope::Scopes;

/// A request extension that asks the bearer layers (`BearerAuth`, `BearerLayer`) for a token
/// with other scopes, for services that call several APIs through one client.
///
/// ```no_run
/// # async fn demo(http: reqwest_middleware::ClientWithMiddleware) -> Result<(), Box<dyn std::error::Error>> {
/// let scopes = b2c_token::Scopes::new(["https://contoso.onmicrosoft.com/billing/.default"])?;
/// let response = http
///     .get("https://billing.contoso.com/invoices")
///     .with_extension(b2c_token::outgoing::TokenScopes(scopes))
///     .send()
///     .await?;
/// # let _ = response; Ok(()) }
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenScopes(pub Scopes);

#[cfg(any(feature = "reqwest-middleware", feature = "tower"))]
/// The hosts a bearer token may be sent to.
#[derive(Debug, Clone, Default)]
pub(crate) struct AllowList {
    hosts: Vec<AllowedHost>,
    any: bool,
}

#[cfg(any(feature = "reqwest-middleware", feature = "tower"))]
/// What to do with one outgoing request.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// Attach the token.
    Attach,
    /// The host is not allowed: send the request without a token.
    Skip,
}

#[cfg(any(feature = "reqwest-middleware", feature = "tower"))]
impl AllowList {
    /// Adds `host` (`api.contoso.com`, `127.0.0.1:8080`, `[::1]`).
    ///
    /// # Errors
    /// [`Error::Config`] for an entry that is not a host: a scheme, path, query, fragment or
    /// user (`http://127.0.0.1:8080`, `api.contoso.com/v1`) would never match a request, and
    /// every token would silently stay home.
    pub(crate) fn allow(&mut self, host: &str) -> Result<(), Error> {
        self.hosts.push(AllowedHost::parse(host)?);
        Ok(())
    }

    pub(crate) fn allow_any(&mut self) {
        self.any = true;
    }

    /// Whether a request to `scheme://host:port` gets the token; an error (nothing sent) for
    /// an allowed host over plain `http://` that is not loopback.
    pub(crate) fn check(&self, scheme: &str, host: Option<&str>, port: Option<u16>) -> Result<Verdict, Error> {
        let matched = host.and_then(|host| self.hosts.iter().find(|allowed| allowed.matches(host, port)));
        if matched.is_none() && !self.any {
            return Ok(Verdict::Skip);
        }
        if scheme == "https" {
            return Ok(Verdict::Attach);
        }
        // Plain http: only to this machine (an entry knows whether it is loopback).
        let loopback = match matched {
            Some(entry) => entry.loopback,
            None => host.is_some_and(crate::authority::is_loopback_host),
        };
        if !loopback {
            return Err(Error::RequestNotSent(format!(
                "refusing to send a bearer token over {scheme}:// to {}: use https",
                host.unwrap_or_default()
            )));
        }
        Ok(Verdict::Attach)
    }
}

#[cfg(any(feature = "reqwest-middleware", feature = "tower"))]
/// An allow-list entry: a host, optionally pinned to one port. Parsed once, matched on every
/// request without allocating.
#[derive(Debug, Clone, PartialEq, Eq)]
struct AllowedHost {
    host: String,
    port: Option<u16>,
    /// Whether `host` is this machine, decided once.
    loopback: bool,
}

#[cfg(any(feature = "reqwest-middleware", feature = "tower"))]
impl AllowedHost {
    fn parse(entry: &str) -> Result<Self, Error> {
        let entry = entry.trim().to_ascii_lowercase();
        if entry.is_empty()
            || entry.contains("://")
            || entry.contains(|c: char| matches!(c, '/' | '?' | '#' | '@') || c.is_whitespace() || c.is_control())
        {
            return Err(Error::config(format!(
                "allow_host({entry:?}): give a host, optionally with a port (api.contoso.com, 127.0.0.1:8080), without a scheme, path or query"
            )));
        }
        // `host:port`, but not the colons inside a bare IPv6 address (`[::1]` has no port).
        if let Some((host, port)) = entry.rsplit_once(':') {
            let is_host_port = !host.is_empty() && (!host.contains(':') || host.ends_with(']'));
            if let (true, Ok(port)) = (is_host_port, port.parse()) {
                return Ok(Self {
                    loopback: crate::authority::is_loopback_host(host),
                    host: host.to_owned(),
                    port: Some(port),
                });
            }
        }
        Ok(Self {
            loopback: crate::authority::is_loopback_host(&entry),
            host: entry,
            port: None,
        })
    }

    fn matches(&self, host: &str, port: Option<u16>) -> bool {
        // The URL parser lowercases http(s) hosts, as `parse` lowercased the entry: a byte
        // comparison (`memcmp`) settles nearly every request; case folding byte by byte costs
        // several times more on the bearer layers' per-request path.
        let same_host = self.host == host || self.host.eq_ignore_ascii_case(host);
        same_host && (self.port.is_none() || self.port == port)
    }
}

#[cfg(all(test, any(feature = "reqwest-middleware", feature = "tower")))]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::AllowedHost;

    #[test]
    fn allow_list_entries_match_host_and_optional_port() {
        let parse = |entry| AllowedHost::parse(entry).unwrap();
        let api = parse("API.contoso.com");
        assert!(api.matches("api.contoso.com", Some(443)) && api.matches("api.CONTOSO.com", Some(8443)));
        assert!(!api.matches("evil.com", Some(443)) && !api.matches("api.contoso.com.evil.com", Some(443)));
        let pinned = parse("127.0.0.1:8080");
        assert!(pinned.matches("127.0.0.1", Some(8080)) && !pinned.matches("127.0.0.1", Some(8081)));
        let v6 = parse("[::1]");
        assert!(v6.matches("[::1]", Some(80)));
        let v6_port = parse("[::1]:9000");
        assert!(v6_port.matches("[::1]", Some(9000)) && !v6_port.matches("[::1]", Some(80)));
    }

    #[test]
    fn entries_that_are_not_hosts_are_refused() {
        for entry in [
            "http://127.0.0.1:8080",
            "https://api.contoso.com",
            "api.contoso.com/v1",
            "api.contoso.com?x=1",
            "user@api.contoso.com",
            "api.contoso.com#a",
            "",
            "api contoso",
        ] {
            assert!(AllowedHost::parse(entry).is_err(), "{entry:?}");
        }
    }
}
