//! The runtime that runs the calls of async callers (Python's asyncio).
//!
//! A blocking caller runs its call on its own thread's lane (see
//! `router.rs`). An event loop must not block, so its calls are spawned onto
//! one process-wide runtime with a single worker thread: thousands of calls
//! in flight cost tasks, not threads, and the loop's thread only hands them
//! over and takes their results. Its connection tasks run all the time, so a
//! cancelled call's sockets close at once.

use std::sync::{Mutex, PoisonError};

use tokio::runtime::{Handle, Runtime};

/// Worker threads of the background runtime. Routing is I/O-bound and the
/// event loop's thread does the Python work (building the dicts); one
/// thread keeps a call's bookkeeping off the loop and leaves the other cores
/// to the application.
const WORKER_THREADS: usize = 1;

/// The runtime, with the id of the process that built it: a forked child
/// has none of its threads and builds its own.
static RUNTIME: Mutex<Option<(u32, &'static Runtime)>> = Mutex::new(None);

/// This process's background runtime, built at its first use.
pub fn handle() -> std::io::Result<Handle> {
    let pid = std::process::id();
    let mut slot = RUNTIME.lock().unwrap_or_else(PoisonError::into_inner);
    if let Some((owner, runtime)) = *slot {
        if owner == pid {
            return Ok(runtime.handle().clone());
        }
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(WORKER_THREADS)
        .thread_name("f3dx-router-io")
        .enable_all()
        .build()?;
    // Kept for the process's life (a parent's, after a fork, is forgotten:
    // dropping it would wait for threads this process does not have).
    let runtime: &'static Runtime = Box::leak(Box::new(runtime));
    *slot = Some((pid, runtime));
    Ok(runtime.handle().clone())
}
