//! `f3dx_router._native`: the PyO3 extension. Python code imports it through
//! the `f3dx_router` package, which defines the exception hierarchy.

mod aio;
mod config;
mod convert;
mod errors;
mod front_door;
mod headers;
mod observe;
mod repr;
mod router;
mod signals;
mod stream;
mod trace;

use pyo3::prelude::*;

/// The extension's Rust allocations go to mimalloc (Cargo.toml says why):
/// under many calling threads glibc's per-thread arenas kept growing the free
/// space they hold. Python's allocations are not affected.
#[cfg(not(target_arch = "wasm32"))]
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[cfg(not(target_arch = "wasm32"))]
const ALLOCATOR: &str = "mimalloc 2";
#[cfg(target_arch = "wasm32")]
const ALLOCATOR: &str = "the system allocator";

#[pymodule]
fn _native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    signals::note_main_thread(m.py())?;
    m.add_class::<router::PyRouter>()?;
    m.add_class::<trace::PyAttempt>()?;
    m.add_class::<trace::PyRouteResult>()?;
    m.add_class::<stream::PyChatStream>()?;
    m.add_class::<stream::PySseIter>()?;
    m.add_class::<aio::PyAsyncChatStream>()?;
    m.add_class::<aio::PyAsyncSseIter>()?;
    config::register(m)?;
    m.add_function(wrap_pyfunction!(front_door::serve, m)?)?;
    m.add_function(wrap_pyfunction!(front_door::aserve, m)?)?;
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    // What the Rust code allocates with, for the soak's report (bench/soak.py).
    m.add("_allocator", ALLOCATOR)?;
    Ok(())
}
