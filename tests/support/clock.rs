//! Tokio's clock, paused and moved only by hand.

/// Pauses tokio's clock and stops it from auto-advancing until the returned sender is
/// dropped: a parked blocking task keeps tokio from jumping to the next timer whenever the
/// runtime waits on real loopback I/O.
pub fn manual_clock() -> std::sync::mpsc::Sender<()> {
    tokio::time::pause();
    let (tx, rx) = std::sync::mpsc::channel::<()>();
    tokio::task::spawn_blocking(move || {
        let _ = rx.recv();
    });
    tx
}
