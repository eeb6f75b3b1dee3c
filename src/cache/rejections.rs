//! What an entry remembers of rejections: when an API's 401 last forced a refresh, and which
//! stored versions were invalidated, so that no store (nor a writer replaying an old value)
//! can bring an invalidated token back while it lives.

use tokio::time::Instant;

/// How many invalidated store versions an entry remembers (the oldest go first).
const MAX_REJECTED_VERSIONS: usize = 16;

/// What an entry remembers of rejections: when one last forced a refresh, and which stored
/// versions were invalidated (boxed, and only while there are any).
#[derive(Default)]
pub(super) struct Rejections {
    pub(super) forced_at: Option<Instant>,
    // A thin pointer, not a `Vec` inline: almost no entry ever has any, and every entry pays
    // for the field.
    #[allow(clippy::box_collection)]
    versions: Option<Box<Vec<(u64, Instant)>>>,
}

impl Rejections {
    pub(super) fn remember(&mut self, version: u64, until: Instant) {
        if version == 0 {
            return; // never stored
        }
        let now = Instant::now();
        let versions = self.versions.get_or_insert_with(Box::default);
        versions.retain(|&(_, until)| until > now);
        if versions.len() >= MAX_REJECTED_VERSIONS {
            versions.remove(0);
        }
        versions.push((version, until));
    }

    pub(super) fn contains(&self, version: u64) -> bool {
        let now = Instant::now();
        self.versions
            .as_ref()
            .is_some_and(|versions| versions.iter().any(|&(v, until)| v == version && until > now))
    }
}
