//! Transport failures as [`Error::Transport`], a refused TLS certificate recognised by its type.

use std::sync::Arc;

use crate::error::server_text::Scrubber;
use crate::error::Error;

/// A `reqwest` failure of a token request as the crate's error: see [`transport_error_at`].
pub(crate) fn transport_error(e: reqwest::Error) -> Error {
    transport_error_at(e, "the token endpoint")
}

/// A `reqwest` failure talking to `peer` ("the token endpoint", "the server") as the crate's
/// error: a refused certificate is its own kind (never retried, with the fix in the message);
/// timeouts, connect and read failures say which.
pub(crate) fn transport_error_at(e: reqwest::Error, peer: &str) -> Error {
    let timed_out = e.is_timeout();
    if let Some(problem) = certificate_problem(&e) {
        return Error::certificate(
            format!(
                "{peer}'s TLS certificate was refused ({problem}): if the server uses a private CA, trust it with ClientBuilder::add_root_certificate (the CLI: --ca-file or B2C_CA_FILE); otherwise check the host name and the server's certificate chain"
            ),
            Arc::new(e.without_url()),
        );
    }
    let message = if timed_out {
        "timed out".to_owned()
    } else if e.is_connect() {
        format!("could not connect to {peer}")
    } else if e.is_body() || e.is_decode() {
        "connection failed while reading the response".to_owned()
    } else if e.is_request() {
        "could not send the request (connection dropped?)".to_owned()
    } else {
        "HTTP error".to_owned()
    };
    Error::transport(message, timed_out, Arc::new(e.without_url()))
}

/// The certificate problem in an error's cause chain, if a refused certificate is what failed:
/// the `rustls::Error` found by type, not by searching messages for words a server or a proxy
/// could also send. `std::io::Error` hides the error it wraps from `source()` (it returns that
/// error's own source), so each I/O error is opened with `get_ref`.
fn certificate_problem(error: &(dyn std::error::Error + 'static)) -> Option<String> {
    let mut cause = Some(error);
    while let Some(error) = cause {
        if let Some(problem) = rustls_certificate_problem(error) {
            return Some(problem);
        }
        // An I/O error's `source()` skips the error it wraps: look inside it (and inside any
        // I/O error wrapped in it) before following the chain.
        if let Some(problem) = error
            .downcast_ref::<std::io::Error>()
            .and_then(|io| io.get_ref())
            .and_then(|inner| certificate_problem(inner))
        {
            return Some(problem);
        }
        cause = error.source();
    }
    None
}

fn rustls_certificate_problem(error: &(dyn std::error::Error + 'static)) -> Option<String> {
    match error.downcast_ref::<rustls::Error>()? {
        problem @ (rustls::Error::InvalidCertificate(_) | rustls::Error::InvalidCertRevocationList(_)) => {
            // The text is rustls' own (`invalid peer certificate: UnknownIssuer`); scrubbed
            // and bounded all the same, as all text that reaches an error is.
            let text: String = problem.to_string().chars().take(200).collect();
            Some(Scrubber::default().clean(&text))
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug)]
    struct Wrapper(Box<dyn std::error::Error + Send + Sync>);
    impl std::fmt::Display for Wrapper {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("client error (Connect)")
        }
    }
    impl std::error::Error for Wrapper {
        fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
            Some(&*self.0)
        }
    }

    #[test]
    fn a_rustls_certificate_error_is_found_inside_an_io_error() {
        let rustls = rustls::Error::InvalidCertificate(rustls::CertificateError::UnknownIssuer);
        let chain = Wrapper(Box::new(std::io::Error::new(std::io::ErrorKind::InvalidData, rustls)));
        let problem = certificate_problem(&chain).expect("found by type");
        assert!(problem.contains("UnknownIssuer"), "{problem}");
    }

    #[test]
    fn words_alone_are_not_a_certificate_error() {
        // A proxy or server whose message happens to say the words is not a refused certificate.
        let words = std::io::Error::other("invalid peer certificate: UnknownIssuer");
        assert!(certificate_problem(&Wrapper(Box::new(words))).is_none());
        let other_tls = std::io::Error::new(std::io::ErrorKind::InvalidData, rustls::Error::DecryptError);
        assert!(certificate_problem(&Wrapper(Box::new(other_tls))).is_none());
    }
}
