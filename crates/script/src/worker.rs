//! A worker thread's Lua state: made on that thread, it answers the
//! engine's calls for requests, delays and responses.

use std::cell::Cell;
use std::net::SocketAddr;
use std::rc::Rc;
use std::sync::Arc;

use mlua::{Function, Lua, Table, Value};
use urk_engine::{ResponseUse, ScriptError, ScriptResponse, WorkerScript};

use crate::thread::LocalThread;
use crate::{lock, one_line, value, wrk, Inner};

pub(crate) struct LuaWorker {
    lua: Lua,
    inner: Arc<Inner>,
    index: usize,
    addr: Option<SocketAddr>,
    /// `request()`, if the script has one; else the request `init` built.
    request: Option<Function>,
    fixed: mlua::String,
    response: Option<Function>,
    delay: Option<Function>,
    stop: Rc<Cell<bool>>,
}

impl LuaWorker {
    /// Makes the state, gives it what `setup` set, runs `init(args)` and
    /// builds the static request, as wrk does per thread.
    pub(crate) fn new(
        inner: Arc<Inner>,
        index: usize,
        addr: Option<SocketAddr>,
    ) -> Result<LuaWorker, ScriptError> {
        let lua = wrk::new_state(&inner).map_err(ScriptError)?;
        let seed = lock(&inner.threads).get(index).cloned().unwrap_or_default();
        let addr = seed.addr.or(addr);
        let stop = Rc::new(Cell::new(false));
        let init = || -> mlua::Result<()> {
            let g = lua.globals();
            for (name, v) in &seed.vars {
                g.set(name.as_str(), v.to_lua(&lua)?)?;
            }
            let wrk: Table = g.get("wrk")?;
            wrk.set(
                "thread",
                LocalThread {
                    addr,
                    stop: stop.clone(),
                },
            )?;
            let headers: Table = wrk.get("headers")?;
            if headers.get::<Value>("Host")?.is_nil() {
                headers.set("Host", inner.target.host_header.as_str())?;
            }
            if let Value::Function(init) = g.get::<Value>("init")? {
                let args = lua.create_table()?;
                args.raw_set(0, inner.target.url.as_str())?;
                for (i, a) in inner.args.iter().enumerate() {
                    args.raw_set(i + 1, a.as_str())?;
                }
                init.call::<()>(args)?;
            }
            Ok(())
        };
        init().map_err(|e| ScriptError(format!("init(): {}", one_line(&e))))?;
        let built = || -> mlua::Result<mlua::String> {
            let wrk: Table = lua.globals().get("wrk")?;
            let format: Function = wrk.get("format")?;
            let req: mlua::String = format.call(())?;
            let r = req.clone();
            wrk.set("request", lua.create_function(move |_, ()| Ok(r.clone()))?)?;
            Ok(req)
        };
        let fixed = built().map_err(|e| ScriptError(format!("wrk.format(): {}", one_line(&e))))?;
        let func = |name: &str| match lua.globals().get::<Value>(name) {
            Ok(Value::Function(f)) => Some(f),
            _ => None,
        };
        let hooks = inner.hooks;
        let request = hooks.dynamic.then(|| func("request")).flatten();
        let response = (hooks.response != ResponseUse::None)
            .then(|| func("response"))
            .flatten();
        let delay = hooks.delay.then(|| func("delay")).flatten();
        Ok(LuaWorker {
            lua,
            inner,
            index,
            addr,
            request,
            fixed,
            response,
            delay,
            stop,
        })
    }
}

impl WorkerScript for LuaWorker {
    fn addr(&self) -> Option<SocketAddr> {
        self.addr
    }

    fn request(&mut self, out: &mut Vec<u8>) -> Result<(), ScriptError> {
        let Some(f) = &self.request else {
            out.extend_from_slice(&self.fixed.as_bytes());
            return Ok(());
        };
        match f.call::<Value>(()) {
            Ok(Value::String(s)) => {
                out.extend_from_slice(&s.as_bytes());
                Ok(())
            }
            Ok(other) => Err(ScriptError(format!(
                "{}: request() returned a value of type {}, not a string (build it with wrk.format)",
                self.inner.path,
                other.type_name()
            ))),
            Err(e) => Err(ScriptError(format!("request(): {}", one_line(&e)))),
        }
    }

    fn delay_ms(&mut self) -> Result<f64, ScriptError> {
        let Some(f) = &self.delay else {
            return Ok(0.0);
        };
        match f.call::<Value>(()) {
            Ok(Value::Integer(n)) => Ok(n as f64),
            Ok(Value::Number(n)) => Ok(n),
            Ok(Value::Nil) => Ok(0.0),
            Ok(other) => Err(ScriptError(format!(
                "{}: delay() returned a value of type {}, not a number of milliseconds",
                self.inner.path,
                other.type_name()
            ))),
            Err(e) => Err(ScriptError(format!("delay(): {}", one_line(&e)))),
        }
    }

    fn response(&mut self, r: &ScriptResponse<'_>) -> Result<(), ScriptError> {
        let Some(f) = &self.response else {
            return Ok(());
        };
        let call = || -> mlua::Result<()> {
            match self.inner.hooks.response {
                ResponseUse::None | ResponseUse::Status => f.call::<()>(r.status),
                use_ => {
                    let headers = self.lua.create_table()?;
                    for (name, value) in r.headers {
                        headers.set(*name, self.lua.create_string(value)?)?;
                    }
                    if use_ == ResponseUse::Body {
                        f.call::<()>((r.status, headers, self.lua.create_string(r.body)?))
                    } else {
                        f.call::<()>((r.status, headers))
                    }
                }
            }
        };
        call().map_err(|e| ScriptError(format!("response(): {}", one_line(&e))))
    }

    fn stopped(&self) -> bool {
        self.stop.get()
    }

    fn finish(&mut self) {
        let after = value::snapshot(&self.lua.globals());
        if let Some(seed) = lock(&self.inner.threads).get_mut(self.index) {
            seed.after = Some(after);
        }
    }
}
