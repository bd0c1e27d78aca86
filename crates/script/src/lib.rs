//! wrk's Lua scripts on urk: the same hooks with the same meaning, on
//! LuaJIT, so that a script written for wrk runs unchanged.
//!
//! As in wrk there is one Lua state per worker thread, created on that
//! thread, plus the main state, which runs `setup(thread)` before the load
//! and `done(summary, latency, requests)` after it. The script's top level
//! runs once in each state. Per request the engine only calls the hooks the
//! script has: a script without `request()` builds its request once per
//! thread, after `init`, and costs nothing per request; one without
//! `response()` never has a header table built.
//!
//! ```no_run
//! use std::sync::Arc;
//! use urk_engine::{Config, Plan};
//!
//! let url = "http://127.0.0.1:8080/";
//! let mut cfg = Config::new(url)?.threads(2).connections(20);
//! let mut script = script::Script::load("counter.lua", &cfg.request, &["arg1".into()])?;
//! cfg = cfg.script(script.engine_script());
//! let plan = Plan::new(&cfg)?;
//! script.setup(cfg.threads, plan.addr())?;
//! let report = plan.run_until(&Default::default())?;
//! script.done(&report)?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod done;
mod thread;
mod value;
mod worker;
mod wrk;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use mlua::{Function, Lua, Value};
use urk_engine::proto::{RequestSpec, Target};
use urk_engine::{Hooks, RequestScript, ResponseUse, ScriptError, WorkerScript};

use value::Owned;

/// What every state of a run is made from, and what crosses between
/// them: `setup`'s `thread:set` values and addresses on the way in, the
/// threads' globals on the way out (for `thread:get` in `done`).
#[derive(Debug)]
pub(crate) struct Inner {
    pub path: String,
    pub code: String,
    pub target: Target,
    pub method: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    /// `args[1..]` of `init(args)`; `args[0]` is the URL.
    pub args: Vec<String>,
    pub hooks: Hooks,
    pub threads: Mutex<Vec<ThreadSeed>>,
}

/// One worker thread's side as `setup` left it, and as the run left it.
#[derive(Debug, Default, Clone)]
pub(crate) struct ThreadSeed {
    pub addr: Option<SocketAddr>,
    /// `thread:set(name, value)` from `setup`, in order.
    pub vars: Vec<(String, Owned)>,
    /// The thread's globals when its load ended.
    pub after: Option<Vec<(String, Owned)>>,
}

/// A loaded script: its main state (setup and done run there) and what
/// the engine needs to make the worker states.
pub struct Script {
    lua: Lua,
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Script {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Script")
            .field("path", &self.inner.path)
            .field("hooks", &self.inner.hooks)
            .finish()
    }
}

/// The engine's handle on the script: makes worker states.
#[derive(Debug)]
struct EngineScript(Arc<Inner>);

impl Script {
    /// Reads and runs the script in the main state. `request` gives the
    /// `wrk` table's defaults (URL, method, headers, body); `args` are the
    /// script's arguments (after `--` on urk's command line). A file that
    /// cannot be read or does not compile is refused, with its line.
    pub fn load(path: &str, request: &RequestSpec, args: &[String]) -> Result<Script, ScriptError> {
        let code = std::fs::read_to_string(path)
            .map_err(|e| ScriptError(format!("cannot read script '{path}': {e}")))?;
        let mut inner = Inner {
            path: path.to_string(),
            code,
            target: request.target.clone(),
            method: request.method.clone(),
            headers: request.headers.clone(),
            body: request.body.clone(),
            args: args.to_vec(),
            hooks: Hooks::default(),
            threads: Mutex::new(Vec::new()),
        };
        let lua = wrk::new_state(&inner).map_err(ScriptError)?;
        inner.hooks = hooks(&lua).map_err(|e| ScriptError(one_line(&e)))?;
        Ok(Script {
            lua,
            inner: Arc::new(inner),
        })
    }

    /// Which hooks the script has.
    pub fn hooks(&self) -> Hooks {
        self.inner.hooks
    }

    /// What goes into [`urk_engine::Config::script`].
    pub fn engine_script(&self) -> Arc<dyn RequestScript> {
        Arc::new(EngineScript(self.inner.clone()))
    }

    /// Runs `setup(thread)` once per worker thread, in the main state,
    /// before any load; `addr` is where the run connects (each thread's
    /// `thread.addr` until the script sets another).
    pub fn setup(&mut self, threads: usize, addr: Option<SocketAddr>) -> Result<(), ScriptError> {
        *lock(&self.inner.threads) = vec![
            ThreadSeed {
                addr,
                ..ThreadSeed::default()
            };
            threads
        ];
        let Ok(Value::Function(setup)) = self.lua.globals().get::<Value>("setup") else {
            return Ok(());
        };
        for index in 0..threads {
            let handle = thread::MainThread {
                index,
                inner: self.inner.clone(),
            };
            setup
                .call::<()>(handle)
                .map_err(|e| ScriptError(format!("setup(): {}", one_line(&e))))?;
        }
        Ok(())
    }

    /// Whether the script has a `done` hook.
    pub fn has_done(&self) -> bool {
        matches!(
            self.lua.globals().get::<Value>("done"),
            Ok(Value::Function(_))
        )
    }

    /// Runs `done(summary, latency, requests)` in the main state, with
    /// wrk's objects made from `report`.
    pub fn done(&self, report: &urk_engine::Report) -> Result<(), ScriptError> {
        let Ok(Value::Function(f)) = self.lua.globals().get::<Value>("done") else {
            return Ok(());
        };
        let call = || -> mlua::Result<()> {
            let summary = done::summary(&self.lua, report)?;
            let latency = done::Stats(report.latency_histogram.clone());
            let requests = done::Stats(report.rate_histogram.clone());
            f.call::<()>((summary, latency, requests))
        };
        call().map_err(|e| ScriptError(format!("done(): {}", one_line(&e))))
    }
}

impl RequestScript for EngineScript {
    fn hooks(&self) -> Hooks {
        self.0.hooks
    }

    fn for_worker(
        &self,
        index: usize,
        addr: Option<SocketAddr>,
    ) -> Result<Box<dyn WorkerScript>, ScriptError> {
        worker::LuaWorker::new(self.0.clone(), index, addr).map(|w| Box::new(w) as Box<_>)
    }
}

/// Which hooks are functions after the top level ran, and how many
/// parameters `response` takes (headers and bodies are only gathered for
/// a hook that takes them).
fn hooks(lua: &Lua) -> mlua::Result<Hooks> {
    let g = lua.globals();
    let is_fn = |name: &str| matches!(g.get::<Value>(name), Ok(Value::Function(_)));
    let response = match g.get::<Value>("response")? {
        Value::Function(f) => match nparams(lua, &f)? {
            None => ResponseUse::Body,
            Some(0 | 1) => ResponseUse::Status,
            Some(2) => ResponseUse::Headers,
            Some(_) => ResponseUse::Body,
        },
        _ => ResponseUse::None,
    };
    Ok(Hooks {
        dynamic: is_fn("request"),
        delay: is_fn("delay"),
        response,
    })
}

/// A Lua function's declared parameters; `None` if it takes `...`.
pub(crate) fn nparams(lua: &Lua, f: &Function) -> mlua::Result<Option<u32>> {
    let getinfo: Function = lua
        .load(
            "return function(f) local i = debug.getinfo(f, 'u'); return i.nparams, i.isvararg end",
        )
        .eval()?;
    let (n, vararg): (u32, bool) = getinfo.call(f.clone())?;
    Ok((!vararg).then_some(n))
}

/// A Lua error as one line: the message with its file and line, without
/// the traceback.
pub(crate) fn one_line(e: &mlua::Error) -> String {
    match e {
        mlua::Error::SyntaxError { message, .. } => first_line(message),
        mlua::Error::RuntimeError(m) => first_line(m),
        mlua::Error::CallbackError { cause, .. } => one_line(cause),
        mlua::Error::WithContext { cause, context } => format!("{context}: {}", one_line(cause)),
        other => first_line(&other.to_string()),
    }
}

fn first_line(s: &str) -> String {
    s.lines().next().unwrap_or("").trim().to_string()
}

/// A runtime error raised from Rust inside a Lua call, with the script's
/// file and line where the call was made, as Lua's own errors have.
pub(crate) fn error_here(lua: &Lua, msg: impl std::fmt::Display) -> mlua::Error {
    let at = lua
        .inspect_stack(1, |d| {
            let src = d.source();
            let file = src.short_src.as_deref().unwrap_or("?").to_string();
            format!("{file}:{}: ", d.current_line().unwrap_or(0))
        })
        .unwrap_or_default();
    mlua::Error::runtime(format!("{at}{msg}"))
}

pub(crate) fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}
