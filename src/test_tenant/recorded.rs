//! What the tenant received: requests kept for a test's assertions, secrets redacted in `Debug`.

use std::fmt;

/// One request the tenant received, for assertions. `Debug` redacts secret form fields
/// and the `Authorization` header; the accessors give the real values.
#[derive(Clone)]
pub struct RecordedRequest {
    pub(super) method: String,
    pub(super) path: String,
    pub(super) query: Option<String>,
    pub(super) headers: Vec<(String, String)>,
    pub(super) form: Vec<(String, String)>,
}

impl RecordedRequest {
    /// The HTTP method.
    #[must_use]
    pub fn method(&self) -> &str {
        &self.method
    }

    /// The path, still percent-encoded.
    #[must_use]
    pub fn path(&self) -> &str {
        &self.path
    }

    /// The query string, if any.
    #[must_use]
    pub fn query(&self) -> Option<&str> {
        self.query.as_deref()
    }

    /// A header's value (name compared case-insensitively).
    #[must_use]
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// A decoded form field's value.
    #[must_use]
    pub fn form_value(&self, name: &str) -> Option<&str> {
        self.form.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
    }

    /// All decoded form fields, in order.
    #[must_use]
    pub fn form(&self) -> &[(String, String)] {
        &self.form
    }
}

impl fmt::Debug for RecordedRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const SECRET_FIELDS: [&str; 4] = ["password", "client_secret", "refresh_token", "client_assertion"];
        let form: Vec<(&str, &str)> = self
            .form
            .iter()
            .map(|(n, v)| {
                (
                    n.as_str(),
                    if SECRET_FIELDS.contains(&n.as_str()) {
                        "[REDACTED]"
                    } else {
                        v.as_str()
                    },
                )
            })
            .collect();
        let headers: Vec<(&str, &str)> = self
            .headers
            .iter()
            .map(|(n, v)| {
                (
                    n.as_str(),
                    if n.eq_ignore_ascii_case("authorization") {
                        "[REDACTED]"
                    } else {
                        v.as_str()
                    },
                )
            })
            .collect();
        f.debug_struct("RecordedRequest")
            .field("method", &self.method)
            .field("path", &self.path)
            .field("query", &self.query)
            .field("headers", &headers)
            .field("form", &form)
            .finish()
    }
}
