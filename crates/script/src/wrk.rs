//! The `wrk` table every state gets, with wrk's fields and functions:
//! `scheme, host, port, method, path, headers, body, thread`,
//! `format(method, path, headers, body)`, `lookup(host, service)`,
//! `connect(addr)`; `request()` once `init` has run.

use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::time::Duration;

use mlua::{Lua, MetaMethod, Table, UserData, UserDataMethods, Value};

use crate::Inner;

/// An address from `wrk.lookup`, for `thread.addr` and `wrk.connect`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Addr(pub SocketAddr);

impl UserData for Addr {
    fn add_methods<M: UserDataMethods<Self>>(m: &mut M) {
        m.add_meta_method(MetaMethod::ToString, |_, a, ()| Ok(a.0.to_string()));
    }
}

/// `print` that writes each line in one piece: LuaJIT's writes its
/// arguments and the newline one by one, so the lines of worker threads
/// printing at once came out interleaved (`created=1created=2`).
fn install_print(lua: &Lua) -> mlua::Result<()> {
    let tostring: mlua::Function = lua.globals().get("tostring")?;
    let print = lua.create_function(move |_, args: mlua::Variadic<Value>| {
        let mut line = Vec::new();
        for (k, v) in args.into_iter().enumerate() {
            if k > 0 {
                line.push(b'\t');
            }
            let s: mlua::String = tostring.call(v)?;
            line.extend_from_slice(&s.as_bytes());
        }
        line.push(b'\n');
        use std::io::Write;
        let _ = std::io::stdout().lock().write_all(&line);
        Ok(())
    })?;
    lua.globals().set("print", print)
}

/// A new state with every library wrk opens, the `wrk` table, and the
/// script's top level run (as wrk does, once per state).
pub(crate) fn new_state(inner: &Inner) -> Result<Lua, String> {
    // SAFETY: wrk opens every library for its scripts, `debug` and `ffi`
    // included, and scripts use them (debug.getinfo tells which response
    // parameters a hook takes). The script is the user's own code, trusted
    // as it is by wrk; nothing of urk's memory is handed to it.
    let lua = unsafe { Lua::unsafe_new_with(mlua::StdLib::ALL, mlua::LuaOptions::new()) };
    install(&lua, inner).map_err(|e| crate::one_line(&e))?;
    lua.load(&inner.code)
        .set_name(format!("@{}", inner.path))
        .exec()
        .map_err(|e| crate::one_line(&e))?;
    Ok(lua)
}

fn install(lua: &Lua, inner: &Inner) -> mlua::Result<()> {
    install_print(lua)?;
    let t = &inner.target;
    let wrk = lua.create_table()?;
    wrk.set("scheme", if t.tls { "https" } else { "http" })?;
    wrk.set("host", t.host.as_str())?;
    // As in the URL: nil when it gives none.
    let explicit = t.host_header.ends_with(&format!(":{}", t.port));
    wrk.set("port", explicit.then(|| t.port.to_string()))?;
    wrk.set("method", inner.method.as_str())?;
    wrk.set("path", t.path_and_query.as_str())?;
    let headers = lua.create_table()?;
    for (n, v) in &inner.headers {
        headers.set(n.as_str(), v.as_str())?;
    }
    wrk.set("headers", headers)?;
    if !inner.body.is_empty() {
        wrk.set("body", lua.create_string(&inner.body)?)?;
    }
    wrk.set("format", lua.create_function(format)?)?;
    wrk.set(
        "lookup",
        lua.create_function(|lua, (host, service): (String, Value)| {
            let service = match service {
                Value::Nil => "http".to_string(),
                v => lua
                    .coerce_string(v)?
                    .map(|s| s.to_string_lossy())
                    .unwrap_or_default(),
            };
            let port: u16 = match service.as_str() {
                "http" => 80,
                "https" => 443,
                p => p.parse().map_err(|_| {
                    crate::error_here(
                        lua,
                        format!("unable to resolve {host}:{service}: unknown service"),
                    )
                })?,
            };
            let addrs = (host.as_str(), port).to_socket_addrs().map_err(|e| {
                crate::error_here(lua, format!("unable to resolve {host}:{service}: {e}"))
            })?;
            let list = lua.create_table()?;
            for (i, a) in addrs.enumerate() {
                list.raw_set(i + 1, Addr(a))?;
            }
            Ok(list)
        })?,
    )?;
    wrk.set(
        "connect",
        lua.create_function(|_, a: mlua::UserDataRef<Addr>| {
            Ok(TcpStream::connect_timeout(&a.0, Duration::from_secs(2)).is_ok())
        })?,
    )?;
    lua.globals().set("wrk", wrk.clone())?;
    // `require "wrk"` finds the same table.
    let loaded: Table = lua.globals().get::<Table>("package")?.get("loaded")?;
    loaded.set("wrk", wrk)?;
    Ok(())
}

/// `wrk.format(method, path, headers, body)`: a request with the `wrk`
/// table's values for what is nil, its `Host` when the headers have none,
/// and `Content-Length` when there is a body.
fn format(
    lua: &Lua,
    (method, path, headers, body): (Value, Value, Option<Table>, Value),
) -> mlua::Result<mlua::String> {
    let wrk: Table = lua.globals().get("wrk")?;
    let text = |v: Value, field: &str| -> mlua::Result<Vec<u8>> {
        let v = match v {
            Value::Nil => wrk.get::<Value>(field)?,
            v => v,
        };
        Ok(lua
            .coerce_string(v)?
            .map(|s| s.as_bytes().to_vec())
            .unwrap_or_default())
    };
    let method = text(method, "method")?;
    let path = text(path, "path")?;
    let body = match body {
        Value::Nil => wrk.get::<Value>("body")?,
        b => b,
    };
    let body = lua.coerce_string(body)?;
    let defaults: Table = wrk.get("headers")?;
    let headers = headers.unwrap_or_else(|| defaults.clone());
    let mut out = Vec::with_capacity(128);
    out.extend_from_slice(&method);
    out.push(b' ');
    out.extend_from_slice(&path);
    out.extend_from_slice(b" HTTP/1.1\r\n");
    let host = match headers.get::<Value>("Host")? {
        Value::Nil => defaults.get::<Value>("Host")?,
        h => h,
    };
    if let Some(h) = lua.coerce_string(host)? {
        out.extend_from_slice(b"Host: ");
        out.extend_from_slice(&h.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    for pair in headers.pairs::<mlua::String, Value>() {
        let (name, value) = pair?;
        let n = name.as_bytes();
        if &*n == b"Host" || n.eq_ignore_ascii_case(b"content-length") {
            continue;
        }
        if let Some(v) = lua.coerce_string(value)? {
            out.extend_from_slice(&n);
            out.extend_from_slice(b": ");
            out.extend_from_slice(&v.as_bytes());
            out.extend_from_slice(b"\r\n");
        }
    }
    if let Some(b) = &body {
        out.extend_from_slice(format!("Content-Length: {}\r\n", b.as_bytes().len()).as_bytes());
    }
    out.extend_from_slice(b"\r\n");
    if let Some(b) = &body {
        out.extend_from_slice(&b.as_bytes());
    }
    lua.create_string(&out)
}
