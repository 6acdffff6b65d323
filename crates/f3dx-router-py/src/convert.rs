//! Python objects <-> JSON values, walked directly (no JSON text in between).

use f3dx_router_core::Chunk;
use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyBool, PyDict, PyFloat, PyInt, PyList, PyMapping, PyString, PyTuple};
use serde_json::{Map, Number, Value};

/// Nesting deeper than this is refused rather than overflowing the stack.
const MAX_DEPTH: usize = 128;

/// Why a Python object could not be converted.
pub enum ConvertError {
    /// The value is not JSON-like: a `TypeError` or `ValueError` whose
    /// message says where (`$.messages[0].content: ...`).
    Refused(PyErr),
    /// Python code run during the conversion (a Mapping's `items()`, a
    /// key's `__str__`) raised this, at `path`.
    Raised {
        /// Where in the value, e.g. `$.messages[0]`.
        path: String,
        /// What was raised.
        error: PyErr,
    },
}

/// Convert a JSON-like Python object (dict/Mapping, list/tuple, str, int,
/// float, bool, None). Never panics: a dict changed during the conversion
/// (by a Mapping's `items()` or another thread) is read as a snapshot.
pub fn to_json(obj: &Bound<'_, PyAny>) -> Result<Value, ConvertError> {
    walk(obj, 0).map_err(Refusal::into_err)
}

/// Why a value was refused, and where: the path is only built when a value
/// is refused (it cost a string per key on every call when built on the way down).
struct Refusal {
    /// Path segments from the refused value up to the root.
    segments: Vec<String>,
    kind: RefusalKind,
}

enum RefusalKind {
    Type(String),
    Value(String),
    /// An error Python raised (a str with lone surrogates, a Mapping whose
    /// `items()` failed): passed on as it is.
    Python(PyErr),
}

impl Refusal {
    fn type_error(message: String) -> Self {
        Refusal {
            segments: Vec::new(),
            kind: RefusalKind::Type(message),
        }
    }

    fn value_error(message: String) -> Self {
        Refusal {
            segments: Vec::new(),
            kind: RefusalKind::Value(message),
        }
    }

    fn at(mut self, segment: impl FnOnce() -> String) -> Self {
        self.segments.push(segment());
        self
    }

    fn into_err(self) -> ConvertError {
        let mut path = String::from("$");
        for segment in self.segments.iter().rev() {
            path.push_str(segment);
        }
        match self.kind {
            RefusalKind::Type(m) => {
                ConvertError::Refused(PyTypeError::new_err(format!("{path}: {m}")))
            }
            RefusalKind::Value(m) => {
                ConvertError::Refused(PyValueError::new_err(format!("{path}: {m}")))
            }
            RefusalKind::Python(error) => ConvertError::Raised { path, error },
        }
    }
}

impl From<PyErr> for Refusal {
    fn from(e: PyErr) -> Self {
        Refusal {
            segments: Vec::new(),
            kind: RefusalKind::Python(e),
        }
    }
}

fn walk(obj: &Bound<'_, PyAny>, depth: usize) -> Result<Value, Refusal> {
    if depth > MAX_DEPTH {
        return Err(Refusal::value_error(format!(
            "nested deeper than {MAX_DEPTH} levels"
        )));
    }
    if obj.is_none() {
        return Ok(Value::Null);
    }
    if let Ok(s) = obj.cast::<PyString>() {
        return Ok(Value::String(s.to_str()?.to_owned()));
    }
    // bool before int: Python's bool is an int.
    if let Ok(b) = obj.cast::<PyBool>() {
        return Ok(Value::Bool(b.is_true()));
    }
    if let Ok(int) = obj.cast::<PyInt>() {
        if let Ok(i) = obj.extract::<i64>() {
            return Ok(Value::from(i));
        }
        if let Ok(u) = obj.extract::<u64>() {
            return Ok(Value::from(u));
        }
        // Past 64 bits: JSON numbers have no range, and the digits are kept
        // exactly (serde_json's arbitrary precision).
        let digits = int.str()?.to_str()?.to_owned();
        return digits
            .parse::<Number>()
            .map(Value::Number)
            .map_err(|_| Refusal::value_error("integer not representable in JSON".to_owned()));
    }
    if let Ok(f) = obj.cast::<PyFloat>() {
        return Number::from_f64(f.value())
            .map(Value::Number)
            .ok_or_else(|| Refusal::value_error("NaN and infinity are not JSON".to_owned()));
    }
    if let Ok(d) = obj.cast::<PyDict>() {
        // A shallow copy: converting a value can run Python code (a
        // Mapping's items(), a str subclass) that changes the dict, and
        // pyo3's iterator panics on a dict that changes size. The copy is
        // ours alone; the caller's changes during the call are not seen.
        let d = d.copy()?;
        let mut map = Map::with_capacity(d.len());
        for (k, v) in d.iter() {
            map.insert(key(&k)?, descend(&v, depth, &k)?);
        }
        return Ok(Value::Object(map));
    }
    if let Ok(l) = obj.cast::<PyList>() {
        return l
            .iter()
            .enumerate()
            .map(|(i, v)| descend_index(&v, depth, i))
            .collect();
    }
    if let Ok(t) = obj.cast::<PyTuple>() {
        return t
            .iter()
            .enumerate()
            .map(|(i, v)| descend_index(&v, depth, i))
            .collect();
    }
    if let Ok(m) = obj.cast::<PyMapping>() {
        let mut map = Map::new();
        for item in m.items()?.iter() {
            let (k, v): (Bound<'_, PyAny>, Bound<'_, PyAny>) = item.extract()?;
            map.insert(key(&k)?, descend(&v, depth, &k)?);
        }
        return Ok(Value::Object(map));
    }
    let type_name = obj.get_type().name()?;
    Err(Refusal::type_error(format!(
        "{type_name} is not JSON-serializable"
    )))
}

fn key(k: &Bound<'_, PyAny>) -> Result<String, Refusal> {
    match k.cast::<PyString>() {
        Ok(s) => Ok(s.to_str()?.to_owned()),
        Err(_) => Err(Refusal::type_error("dict keys must be str".to_owned())),
    }
}

fn descend(v: &Bound<'_, PyAny>, depth: usize, k: &Bound<'_, PyAny>) -> Result<Value, Refusal> {
    walk(v, depth + 1)
        .map_err(|r| r.at(|| format!(".{}", k.str().map(|s| s.to_string()).unwrap_or_default())))
}

fn descend_index(v: &Bound<'_, PyAny>, depth: usize, i: usize) -> Result<Value, Refusal> {
    walk(v, depth + 1).map_err(|r| r.at(|| format!("[{i}]")))
}

/// A stream's chunk as Python objects. An unchanged chunk's JSON text goes
/// through the C scanner of Python's `json` (`JSONDecoder().scan_once`,
/// without `json.loads`'s Python frames and regexes), with no value built
/// in between: it gives what [`to_py`] gives for the text's value (the core
/// checked the text parses as a value; big integers stay exact, other
/// numbers are floats, a repeated key keeps its first place and its last
/// value, in both), but for a number past a float's range, `inf` here
/// (`nan` there).
pub fn chunk_to_py<'py>(py: Python<'py>, chunk: &Chunk) -> PyResult<Bound<'py, PyAny>> {
    static SCAN: PyOnceLock<Py<PyAny>> = PyOnceLock::new();
    let Some(text) = chunk.raw_text() else {
        return to_py(py, &chunk.value());
    };
    let scan = SCAN.get_or_try_init(py, || {
        let decoder = py.import("json.decoder")?.getattr("JSONDecoder")?.call0()?;
        decoder.getattr("scan_once").map(Bound::unbind)
    })?;
    // The scanner starts at a value: the JSON whitespace before it is
    // skipped here (the text was checked; what follows the value is
    // whitespace too).
    let text = text.trim_start_matches([' ', '\t', '\n', '\r']);
    let (value, _end): (Bound<'py, PyAny>, usize) = scan.bind(py).call1((text, 0))?.extract()?;
    Ok(value)
}

/// Convert a JSON value to plain Python objects (dict, list, str, int,
/// float, bool, None). Integers are exact whatever their size.
pub fn to_py<'py>(py: Python<'py>, value: &Value) -> PyResult<Bound<'py, PyAny>> {
    Ok(match value {
        Value::Null => py.None().into_bound(py),
        Value::Bool(b) => PyBool::new(py, *b).to_owned().into_any(),
        Value::Number(n) => {
            if let Some(i) = n.as_i64() {
                i.into_pyobject(py)?.into_any()
            } else if let Some(u) = n.as_u64() {
                u.into_pyobject(py)?.into_any()
            } else if n.as_str().bytes().all(|b| b.is_ascii_digit() || b == b'-') {
                // An integer past 64 bits, as written: Python's int() reads
                // it exactly.
                py.get_type::<PyInt>().call1((n.as_str(),))?
            } else {
                n.as_f64().unwrap_or(f64::NAN).into_pyobject(py)?.into_any()
            }
        }
        Value::String(s) => PyString::new(py, s).into_any(),
        Value::Array(items) => {
            let list = PyList::empty(py);
            for item in items {
                list.append(to_py(py, item)?)?;
            }
            list.into_any()
        }
        Value::Object(map) => {
            let dict = PyDict::new(py);
            for (k, v) in map {
                dict.set_item(k, to_py(py, v)?)?;
            }
            dict.into_any()
        }
    })
}
