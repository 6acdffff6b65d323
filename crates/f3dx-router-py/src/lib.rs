//! `f3dx_router._native`: the PyO3 extension. Python code imports it through
//! the `f3dx_router` package, which defines the exception hierarchy.

mod convert;
mod errors;
mod router;
mod signals;
mod stream;
mod trace;

use pyo3::prelude::*;

#[pymodule]
fn _native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    signals::note_main_thread(m.py())?;
    m.add_class::<router::PyRouter>()?;
    m.add_class::<trace::PyAttempt>()?;
    m.add_class::<trace::PyRouteResult>()?;
    m.add_class::<stream::PyChatStream>()?;
    m.add_class::<stream::PySseIter>()?;
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    Ok(())
}
