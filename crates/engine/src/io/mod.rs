//! The I/O beneath the run: how operations reach the kernel (`backend`:
//! io_uring or epoll, with `ring` and the provided-buffer ring `bufring`),
//! what the kernel offers (`probe`), where connections go (`endpoint`)
//! and over what (`transport`: plain or TLS), the descriptors a run needs
//! (`limits`), how a completion names its operation (`token`), and when
//! the kernel received what a receive reads (`stamps`). Nothing
//! here knows of the worker above it.

pub(crate) mod backend;
pub(crate) mod bufring;
pub(crate) mod endpoint;
pub(crate) mod limits;
pub(crate) mod probe;
pub(crate) mod ring;
pub(crate) mod session;
pub(crate) mod stamps;
pub(crate) mod token;
pub(crate) mod transport;
