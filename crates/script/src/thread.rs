//! wrk's thread objects: `thread.addr`, `thread:get(name)`,
//! `thread:set(name, value)`, `thread:stop()`. In the main state (`setup`,
//! `done`) a thread's values are copies that cross over; in the thread's
//! own state (`wrk.thread`) they are its globals.

use std::cell::Cell;
use std::rc::Rc;
use std::sync::Arc;

use mlua::{AnyUserData, Lua, UserData, UserDataFields, UserDataMethods, Value};

use crate::value::Owned;
use crate::wrk::Addr;
use crate::{lock, Inner};

/// A worker thread as `setup` and `done` see it from the main state.
pub(crate) struct MainThread {
    pub index: usize,
    pub inner: Arc<Inner>,
}

impl UserData for MainThread {
    fn add_fields<F: UserDataFields<Self>>(f: &mut F) {
        f.add_field_method_get("addr", |_, t| {
            Ok(lock(&t.inner.threads)
                .get(t.index)
                .and_then(|s| s.addr)
                .map(Addr))
        });
        f.add_field_method_set("addr", |_, t, a: AnyUserData| {
            let a = *a.borrow::<Addr>()?;
            if let Some(s) = lock(&t.inner.threads).get_mut(t.index) {
                s.addr = Some(a.0);
            }
            Ok(())
        });
    }

    fn add_methods<M: UserDataMethods<Self>>(m: &mut M) {
        m.add_method("get", |lua, t, name: String| {
            let threads = lock(&t.inner.threads);
            let Some(seed) = threads.get(t.index) else {
                return Ok(Value::Nil);
            };
            // After the run: the thread's globals; before it: what setup set.
            let found = match &seed.after {
                Some(globals) => globals.iter().find(|(n, _)| *n == name).map(|(_, v)| v),
                None => seed
                    .vars
                    .iter()
                    .rev()
                    .find(|(n, _)| *n == name)
                    .map(|(_, v)| v),
            };
            found.map_or(Ok(Value::Nil), |v| v.to_lua(lua))
        });
        m.add_method("set", |lua, t, (name, value): (String, Value)| {
            let owned = Owned::from_lua(&value).map_err(|e| crate::error_here(lua, e))?;
            if let Some(s) = lock(&t.inner.threads).get_mut(t.index) {
                s.vars.push((name, owned));
            }
            Ok(())
        });
        // Before the load there is nothing to stop.
        m.add_method("stop", |_, _, ()| Ok(()));
    }
}

/// The worker thread as its own state sees it (`wrk.thread`).
pub(crate) struct LocalThread {
    pub addr: Option<std::net::SocketAddr>,
    pub stop: Rc<Cell<bool>>,
}

impl UserData for LocalThread {
    fn add_fields<F: UserDataFields<Self>>(f: &mut F) {
        f.add_field_method_get("addr", |_, t| Ok(t.addr.map(Addr)));
    }

    fn add_methods<M: UserDataMethods<Self>>(m: &mut M) {
        m.add_method("get", |lua: &Lua, _, name: String| {
            lua.globals().get::<Value>(name)
        });
        m.add_method("set", |lua: &Lua, _, (name, value): (String, Value)| {
            lua.globals().set(name, value)
        });
        m.add_method("stop", |_, t, ()| {
            t.stop.set(true);
            Ok(())
        });
    }
}
