//! A blocking connection, for the exchanges before (or instead of) the
//! load: the TLS probe and `--debug`'s one request. Not for the load:
//! it blocks a thread per socket.

use std::io;
use std::net::TcpStream;
use std::os::unix::net::UnixStream;
use std::time::Duration;

use crate::Endpoint;

/// TCP, or a Unix socket, with timeouts on both directions.
pub(crate) enum BlockingStream {
    Tcp(TcpStream),
    Unix(UnixStream),
}

impl BlockingStream {
    pub(crate) fn connect(to: &Endpoint, timeout: Duration) -> io::Result<BlockingStream> {
        let s = match to {
            Endpoint::Tcp(a) => {
                let s = TcpStream::connect_timeout(a, timeout)?;
                s.set_read_timeout(Some(timeout))?;
                s.set_write_timeout(Some(timeout))?;
                BlockingStream::Tcp(s)
            }
            Endpoint::Unix(p) => {
                let s = UnixStream::connect(p)?;
                s.set_read_timeout(Some(timeout))?;
                s.set_write_timeout(Some(timeout))?;
                BlockingStream::Unix(s)
            }
        };
        Ok(s)
    }

    pub(crate) fn set_read_timeout(&self, t: Option<Duration>) -> io::Result<()> {
        match self {
            BlockingStream::Tcp(s) => s.set_read_timeout(t),
            BlockingStream::Unix(s) => s.set_read_timeout(t),
        }
    }
}

impl io::Read for BlockingStream {
    fn read(&mut self, b: &mut [u8]) -> io::Result<usize> {
        match self {
            BlockingStream::Tcp(s) => s.read(b),
            BlockingStream::Unix(s) => s.read(b),
        }
    }
}

impl io::Write for BlockingStream {
    fn write(&mut self, b: &[u8]) -> io::Result<usize> {
        match self {
            BlockingStream::Tcp(s) => s.write(b),
            BlockingStream::Unix(s) => s.write(b),
        }
    }
    fn flush(&mut self) -> io::Result<()> {
        match self {
            BlockingStream::Tcp(s) => s.flush(),
            BlockingStream::Unix(s) => s.flush(),
        }
    }
}
