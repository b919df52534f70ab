//! A JSON-shaped value: what a ballot's dict form is made of. The Python binding converts a Python
//! object into it (`crate::python`), the tests convert `serde_json` values; the decoder (`crate::ballot`)
//! reads only this type, so both see the same strict rules.

/// One JSON value. `Int` is an exact `int` (never a `bool`, never a float), `None` when it does not fit
/// in an `i64`; `Other` is anything a strict decoder refuses wherever it occurs (floats, `null`, ...).
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Int(Option<i64>),
    Bool(bool),
    Str(String),
    List(Vec<Value>),
    /// An object with string keys, in its own order (keys are unique, as in a Python dict).
    Map(Vec<(String, Value)>),
    Other,
}

impl Value {
    /// The object's value for `key`, if this is an object that has it.
    pub fn get(&self, key: &str) -> Option<&Value> {
        match self {
            Value::Map(items) => items.iter().find(|(k, _)| k == key).map(|(_, v)| v),
            _ => None,
        }
    }

    /// Whether this is an object with exactly the keys `keys` (in any order).
    pub fn has_exact_keys(&self, keys: &[&str]) -> bool {
        match self {
            Value::Map(items) => {
                items.len() == keys.len() && keys.iter().all(|k| items.iter().any(|(x, _)| x == k))
            }
            _ => false,
        }
    }
}
