//! Which thread runs Python's signal handlers, so only its calls pay for
//! waking up to check them.

use std::sync::OnceLock;
use std::thread::ThreadId;
use std::time::Duration;

use pyo3::prelude::*;

/// How often a blocked call on the main thread lets signal handlers run:
/// Ctrl-C is answered within this.
pub const CHECK_EVERY: Duration = Duration::from_millis(50);

static MAIN: OnceLock<ThreadId> = OnceLock::new();

/// Record the main thread, if this is it (called at import, which is
/// normally on the main thread).
pub fn note_main_thread(py: Python<'_>) -> PyResult<()> {
    let threading = py.import("threading")?;
    let current = threading.call_method0("current_thread")?;
    if current.is(&threading.call_method0("main_thread")?) {
        let _ = MAIN.set(std::thread::current().id());
    }
    Ok(())
}

/// Whether Python may run signal handlers on this thread. Without a record
/// (the module was first imported on another thread) every thread checks:
/// a call elsewhere then pays a timer, never a missed Ctrl-C.
pub fn handled_here() -> bool {
    MAIN.get()
        .is_none_or(|main| *main == std::thread::current().id())
}
