//! The open-files limit: raised to the hard limit when the run needs more,
//! or a clear error before any load starts.

use nix::sys::resource::{getrlimit, setrlimit, Resource};

use crate::EngineError;

/// Descriptors kept free for everything that is not a connection (rings,
/// sockets between creation and registration, stdio).
const SPARE: u64 = 64;

/// Makes sure a worker can register a fixed-file table of `per_worker`
/// slots: the kernel caps that table at RLIMIT_NOFILE.
pub(crate) fn ensure_files(per_worker: u64) -> Result<(), EngineError> {
    let needed = per_worker + SPARE;
    let Ok((soft, hard)) = getrlimit(Resource::RLIMIT_NOFILE) else {
        return Ok(());
    };
    if soft >= needed {
        return Ok(());
    }
    if hard < needed {
        return Err(EngineError::TooFewFiles {
            needed: per_worker,
            limit: hard.saturating_sub(SPARE),
        });
    }
    setrlimit(Resource::RLIMIT_NOFILE, hard, hard).map_err(|e| EngineError::Setup {
        what: "raising the open-files limit",
        source: e.into(),
    })
}
