//! Lua values that cross from one Lua state to another (`thread:set` in
//! `setup`, `thread:get` in `done`): copied out into plain Rust data, as
//! wrk copies them between its states. Functions and userdata cannot
//! cross.

use mlua::{Lua, Table, Value};

/// Deepest table nesting copied; deeper is almost surely a cycle.
const MAX_DEPTH: usize = 32;

/// A Lua value with no tie to any state.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Owned {
    Nil,
    Bool(bool),
    Int(i64),
    Num(f64),
    Str(Vec<u8>),
    Table(Vec<(Owned, Owned)>),
}

impl Owned {
    /// Copies `v` out of its state; a function, userdata or thread cannot
    /// be copied.
    pub(crate) fn from_lua(v: &Value) -> Result<Owned, String> {
        Self::copy(v, 0)
    }

    fn copy(v: &Value, depth: usize) -> Result<Owned, String> {
        Ok(match v {
            Value::Nil => Owned::Nil,
            Value::Boolean(b) => Owned::Bool(*b),
            Value::Integer(i) => Owned::Int(*i),
            Value::Number(n) => Owned::Num(*n),
            Value::String(s) => Owned::Str(s.as_bytes().to_vec()),
            Value::Table(t) if depth < MAX_DEPTH => {
                let mut out = Vec::new();
                for pair in t.pairs::<Value, Value>() {
                    let (k, v) = pair.map_err(|e| e.to_string())?;
                    out.push((Self::copy(&k, depth + 1)?, Self::copy(&v, depth + 1)?));
                }
                Owned::Table(out)
            }
            Value::Table(_) => return Err("a table nested too deep (a cycle?)".into()),
            other => {
                return Err(format!(
                    "cannot transfer a {} to another thread",
                    other.type_name()
                ))
            }
        })
    }

    /// The value in `lua`.
    pub(crate) fn to_lua(&self, lua: &Lua) -> mlua::Result<Value> {
        Ok(match self {
            Owned::Nil => Value::Nil,
            Owned::Bool(b) => Value::Boolean(*b),
            Owned::Int(i) => Value::Integer(*i),
            Owned::Num(n) => Value::Number(*n),
            Owned::Str(s) => Value::String(lua.create_string(s)?),
            Owned::Table(pairs) => {
                let t = lua.create_table()?;
                for (k, v) in pairs {
                    t.raw_set(k.to_lua(lua)?, v.to_lua(lua)?)?;
                }
                Value::Table(t)
            }
        })
    }
}

/// Globals of a finished thread, for `thread:get` in `done`: every value
/// that can cross, standard libraries and functions left out.
pub(crate) fn snapshot(globals: &Table) -> Vec<(String, Owned)> {
    const SKIP: &[&str] = &[
        "_G",
        "_VERSION",
        "package",
        "string",
        "table",
        "math",
        "io",
        "os",
        "coroutine",
        "debug",
        "bit",
        "jit",
        "ffi",
        "wrk",
        "arg",
    ];
    let mut out = Vec::new();
    for (k, v) in globals.pairs::<Value, Value>().flatten() {
        let Value::String(name) = k else { continue };
        let Ok(name) = name.to_str().map(|s| s.to_string()) else {
            continue;
        };
        if SKIP.contains(&name.as_str()) {
            continue;
        }
        if let Ok(owned) = Owned::from_lua(&v) {
            out.push((name, owned));
        }
    }
    out
}
