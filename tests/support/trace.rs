//! Everything written to `tracing` at TRACE level, for tests that search the logs for secrets.

use std::io::Write;
use std::sync::{Arc, Mutex};

use tracing::subscriber::DefaultGuard;

/// The log text written so far.
#[derive(Clone, Default)]
pub struct Captured(Arc<Mutex<Vec<u8>>>);

impl Captured {
    /// Starts capturing every event at TRACE level on this thread, until the guard is dropped.
    pub fn start() -> (Self, DefaultGuard) {
        let captured = Self::default();
        let writer = captured.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_max_level(tracing::Level::TRACE)
            .with_writer(move || writer.clone())
            .with_ansi(false)
            .finish();
        (captured, tracing::subscriber::set_default(subscriber))
    }

    /// The text captured so far.
    pub fn text(&self) -> String {
        String::from_utf8(self.0.lock().unwrap().clone()).expect("log output is UTF-8")
    }
}

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// One closed span: its name and every field it was given, at creation or recorded later.
#[derive(Clone, Debug)]
pub struct ClosedSpan {
    pub name: &'static str,
    pub fields: std::collections::BTreeMap<&'static str, String>,
}

/// Collects spans as they close, with all their fields (the fmt output shows only the fields
/// known when an event is written; a span's outcome is recorded after its last event).
#[derive(Clone, Default)]
pub struct Spans {
    open: Arc<Mutex<std::collections::HashMap<tracing::span::Id, ClosedSpan>>>,
    closed: Arc<Mutex<Vec<ClosedSpan>>>,
}

struct FieldWriter<'a>(&'a mut std::collections::BTreeMap<&'static str, String>);

impl tracing::field::Visit for FieldWriter<'_> {
    fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
        self.0.insert(field.name(), format!("{value:?}"));
    }
    fn record_str(&mut self, field: &tracing::field::Field, value: &str) {
        self.0.insert(field.name(), value.to_owned());
    }
}

impl<S> tracing_subscriber::Layer<S> for Spans
where
    S: tracing::Subscriber + for<'a> tracing_subscriber::registry::LookupSpan<'a>,
{
    fn on_new_span(
        &self,
        attrs: &tracing::span::Attributes<'_>,
        id: &tracing::span::Id,
        _: tracing_subscriber::layer::Context<'_, S>,
    ) {
        let mut span = ClosedSpan {
            name: attrs.metadata().name(),
            fields: Default::default(),
        };
        attrs.record(&mut FieldWriter(&mut span.fields));
        self.open.lock().unwrap().insert(id.clone(), span);
    }
    fn on_record(
        &self,
        id: &tracing::span::Id,
        values: &tracing::span::Record<'_>,
        _: tracing_subscriber::layer::Context<'_, S>,
    ) {
        if let Some(span) = self.open.lock().unwrap().get_mut(id) {
            values.record(&mut FieldWriter(&mut span.fields));
        }
    }
    fn on_close(&self, id: tracing::span::Id, _: tracing_subscriber::layer::Context<'_, S>) {
        if let Some(span) = self.open.lock().unwrap().remove(&id) {
            self.closed.lock().unwrap().push(span);
        }
    }
}

impl Spans {
    /// Starts collecting every span on this thread, until the guard is dropped.
    pub fn start() -> (Self, DefaultGuard) {
        use tracing_subscriber::layer::SubscriberExt as _;
        let spans = Self::default();
        let subscriber = tracing_subscriber::registry().with(spans.clone());
        (spans, tracing::subscriber::set_default(subscriber))
    }

    /// The closed spans named `name`, oldest first.
    pub fn closed(&self, name: &str) -> Vec<ClosedSpan> {
        self.closed
            .lock()
            .unwrap()
            .iter()
            .filter(|span| span.name == name)
            .cloned()
            .collect()
    }
}
