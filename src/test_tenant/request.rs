//! The inputs of one token request, as the server read them.

/// The inputs of one token request.
pub(super) struct TokenRequest<'a> {
    pub(super) policy: &'a str,
    /// The URL posted to (a client assertion's `aud` must be it).
    pub(super) endpoint: &'a str,
    pub(super) form: &'a [(String, String)],
    pub(super) basic_auth: bool,
}

impl TokenRequest<'_> {
    pub(super) fn field(&self, name: &str) -> Option<&str> {
        self.form
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
            .filter(|v| !v.is_empty())
    }
}
