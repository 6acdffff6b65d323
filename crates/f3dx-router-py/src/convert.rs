//! Python objects <-> JSON values, walked directly (no JSON text in between).

use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyBool, PyDict, PyFloat, PyInt, PyList, PyMapping, PyString, PyTuple};
use serde_json::{Map, Number, Value};

/// Nesting deeper than this is refused rather than overflowing the stack.
const MAX_DEPTH: usize = 128;

/// Convert a JSON-like Python object (dict/Mapping, list/tuple, str, int,
/// float, bool, None).
pub fn to_json(obj: &Bound<'_, PyAny>) -> PyResult<Value> {
    walk(obj, 0, &mut String::from("$"))
}

fn walk(obj: &Bound<'_, PyAny>, depth: usize, path: &mut String) -> PyResult<Value> {
    if depth > MAX_DEPTH {
        return Err(PyValueError::new_err(format!(
            "{path}: nested deeper than {MAX_DEPTH} levels"
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
    if obj.cast::<PyInt>().is_ok() {
        if let Ok(i) = obj.extract::<i64>() {
            return Ok(Value::from(i));
        }
        if let Ok(u) = obj.extract::<u64>() {
            return Ok(Value::from(u));
        }
        return Err(PyValueError::new_err(format!(
            "{path}: integer out of the 64-bit range"
        )));
    }
    if let Ok(f) = obj.cast::<PyFloat>() {
        return Number::from_f64(f.value())
            .map(Value::Number)
            .ok_or_else(|| {
                PyValueError::new_err(format!("{path}: NaN and infinity are not JSON"))
            });
    }
    if let Ok(d) = obj.cast::<PyDict>() {
        let mut map = Map::with_capacity(d.len());
        for (k, v) in d.iter() {
            map.insert(key(&k, path)?, descend(&v, depth, path, &k)?);
        }
        return Ok(Value::Object(map));
    }
    if let Ok(l) = obj.cast::<PyList>() {
        return l
            .iter()
            .enumerate()
            .map(|(i, v)| descend_index(&v, depth, path, i))
            .collect();
    }
    if let Ok(t) = obj.cast::<PyTuple>() {
        return t
            .iter()
            .enumerate()
            .map(|(i, v)| descend_index(&v, depth, path, i))
            .collect();
    }
    if let Ok(m) = obj.cast::<PyMapping>() {
        let mut map = Map::new();
        for item in m.items()?.iter() {
            let (k, v): (Bound<'_, PyAny>, Bound<'_, PyAny>) = item.extract()?;
            map.insert(key(&k, path)?, descend(&v, depth, path, &k)?);
        }
        return Ok(Value::Object(map));
    }
    let type_name = obj.get_type().name()?;
    Err(PyTypeError::new_err(format!(
        "{path}: {type_name} is not JSON-serializable"
    )))
}

fn key(k: &Bound<'_, PyAny>, path: &str) -> PyResult<String> {
    match k.cast::<PyString>() {
        Ok(s) => Ok(s.to_str()?.to_owned()),
        Err(_) => Err(PyTypeError::new_err(format!(
            "{path}: dict keys must be str"
        ))),
    }
}

fn descend(
    v: &Bound<'_, PyAny>,
    depth: usize,
    path: &mut String,
    k: &Bound<'_, PyAny>,
) -> PyResult<Value> {
    let len = path.len();
    path.push('.');
    path.push_str(&k.str().map(|s| s.to_string()).unwrap_or_default());
    let out = walk(v, depth + 1, path);
    path.truncate(len);
    out
}

fn descend_index(
    v: &Bound<'_, PyAny>,
    depth: usize,
    path: &mut String,
    i: usize,
) -> PyResult<Value> {
    let len = path.len();
    path.push_str(&format!("[{i}]"));
    let out = walk(v, depth + 1, path);
    path.truncate(len);
    out
}

/// Convert a JSON value to plain Python objects (dict, list, str, int,
/// float, bool, None).
pub fn to_py<'py>(py: Python<'py>, value: &Value) -> PyResult<Bound<'py, PyAny>> {
    Ok(match value {
        Value::Null => py.None().into_bound(py),
        Value::Bool(b) => PyBool::new(py, *b).to_owned().into_any(),
        Value::Number(n) => {
            if let Some(i) = n.as_i64() {
                i.into_pyobject(py)?.into_any()
            } else if let Some(u) = n.as_u64() {
                u.into_pyobject(py)?.into_any()
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
