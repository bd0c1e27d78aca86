use std::fmt;

/// Why a response could not be framed. `Copy` so the engine can count and
/// report it without allocating; every variant means the connection's byte
/// stream can no longer be trusted and must be closed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FrameError {
    /// The status line or a header is not valid HTTP/1.x (e.g. garbage).
    InvalidHead(&'static str),
    /// More than [`crate::MAX_HEADERS`] header fields.
    TooManyHeaders,
    /// The head grew past [`crate::MAX_HEAD_BYTES`] without ending.
    HeadTooLarge,
    /// `Content-Length` is not a number, or two of them disagree.
    InvalidContentLength,
    /// A chunk size line is not hexadecimal, or chunk framing is broken.
    InvalidChunk,
    /// A chunk size line or trailer line never ended.
    ChunkLineTooLong,
    /// The connection closed in the middle of a response.
    Truncated,
}

impl fmt::Display for FrameError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FrameError::InvalidHead(why) => write!(f, "invalid response head: {why}"),
            FrameError::TooManyHeaders => {
                write!(f, "response has more than {} headers", crate::MAX_HEADERS)
            }
            FrameError::HeadTooLarge => write!(
                f,
                "response head is larger than {} bytes",
                crate::MAX_HEAD_BYTES
            ),
            FrameError::InvalidContentLength => write!(f, "invalid Content-Length"),
            FrameError::InvalidChunk => write!(f, "invalid chunked encoding"),
            FrameError::ChunkLineTooLong => write!(f, "chunk size or trailer line too long"),
            FrameError::Truncated => write!(f, "connection closed in the middle of a response"),
        }
    }
}

impl std::error::Error for FrameError {}

/// Why a request could not be built from what the user gave.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RequestError {
    /// The URL could not be parsed; the string says why.
    InvalidUrl(String),
    /// A scheme other than http.
    UnsupportedScheme(String),
    /// A header given as something other than `Name: value`.
    InvalidHeader(String),
    /// A method that is not an HTTP token.
    InvalidMethod(String),
}

impl fmt::Display for RequestError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RequestError::InvalidUrl(why) => write!(
                f,
                "invalid URL: {why} (expected e.g. http://127.0.0.1:8080/path)"
            ),
            RequestError::UnsupportedScheme(s) => write!(
                f,
                "unsupported URL scheme '{s}': the URL must start with http:// or https://"
            ),
            RequestError::InvalidHeader(h) => {
                write!(f, "invalid header '{h}': expected 'Name: value'")
            }
            RequestError::InvalidMethod(m) => write!(f, "invalid HTTP method '{m}'"),
        }
    }
}

impl std::error::Error for RequestError {}
