//! The chunked transfer-coding, decoded byte by byte for the framing lines
//! and in bulk for chunk data, so any split of the input gives the same
//! result and nothing is buffered.

use crate::FrameError;

/// Longest chunk size line (size plus extensions) or trailer line accepted.
/// Longer means a peer that never ends the line: an error, not a hang.
pub(crate) const MAX_LINE: u32 = 8 * 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Chunked {
    /// Reading the hex size; `ext` once past the digits (extensions).
    Size {
        value: u64,
        digits: u8,
        ext: bool,
        line: u32,
    },
    /// Saw CR after the size line.
    SizeLf { value: u64 },
    /// Inside chunk data.
    Data { remaining: u64 },
    /// Expecting the CR after chunk data.
    DataCr,
    /// Expecting the LF after chunk data.
    DataLf,
    /// Reading trailer lines after the last chunk.
    Trailer { line: u32 },
    /// Saw CR in the trailer section; `empty` if it ended an empty line.
    TrailerLf { empty: bool },
}

pub(crate) enum Step {
    /// Consumed this many bytes; the body continues.
    More(usize),
    /// Consumed this many bytes; the body is complete.
    Done(usize),
}

impl Chunked {
    pub(crate) const START: Chunked = Chunked::Size {
        value: 0,
        digits: 0,
        ext: false,
        line: 0,
    };

    /// Advances over `data`, stopping at the end of the body.
    pub(crate) fn advance(&mut self, data: &[u8]) -> Result<Step, FrameError> {
        let mut i = 0;
        while i < data.len() {
            if let Chunked::Data { remaining } = self {
                let n = (*remaining).min((data.len() - i) as u64) as usize;
                i += n;
                *remaining -= n as u64;
                if *remaining == 0 {
                    *self = Chunked::DataCr;
                }
                continue;
            }
            let b = data[i];
            i += 1;
            *self = match *self {
                Chunked::Size {
                    value,
                    digits,
                    ext,
                    line,
                } => {
                    if line >= MAX_LINE {
                        return Err(FrameError::ChunkLineTooLong);
                    }
                    let line = line + 1;
                    match b {
                        b'\r' if digits > 0 => Chunked::SizeLf { value },
                        b'\n' if digits > 0 => self.end_size(value),
                        _ if ext => Chunked::Size {
                            value,
                            digits,
                            ext,
                            line,
                        },
                        b';' | b' ' | b'\t' if digits > 0 => Chunked::Size {
                            value,
                            digits,
                            ext: true,
                            line,
                        },
                        _ => {
                            let d = (b as char).to_digit(16).ok_or(FrameError::InvalidChunk)?;
                            if digits >= 15 {
                                return Err(FrameError::InvalidChunk);
                            }
                            Chunked::Size {
                                value: value * 16 + d as u64,
                                digits: digits + 1,
                                ext,
                                line,
                            }
                        }
                    }
                }
                Chunked::SizeLf { value } => match b {
                    b'\n' => self.end_size(value),
                    _ => return Err(FrameError::InvalidChunk),
                },
                Chunked::Data { .. } => unreachable!("handled above"),
                Chunked::DataCr => match b {
                    b'\r' => Chunked::DataLf,
                    b'\n' => Chunked::START,
                    _ => return Err(FrameError::InvalidChunk),
                },
                Chunked::DataLf => match b {
                    b'\n' => Chunked::START,
                    _ => return Err(FrameError::InvalidChunk),
                },
                Chunked::Trailer { line } => match b {
                    b'\r' => Chunked::TrailerLf { empty: line == 0 },
                    b'\n' if line == 0 => {
                        *self = Chunked::START;
                        return Ok(Step::Done(i));
                    }
                    b'\n' => Chunked::Trailer { line: 0 },
                    _ if line >= MAX_LINE => return Err(FrameError::ChunkLineTooLong),
                    _ => Chunked::Trailer { line: line + 1 },
                },
                Chunked::TrailerLf { empty } => match b {
                    b'\n' if empty => {
                        *self = Chunked::START;
                        return Ok(Step::Done(i));
                    }
                    b'\n' => Chunked::Trailer { line: 0 },
                    _ => return Err(FrameError::InvalidChunk),
                },
            };
        }
        Ok(Step::More(i))
    }

    fn end_size(&self, value: u64) -> Chunked {
        if value == 0 {
            Chunked::Trailer { line: 0 }
        } else {
            Chunked::Data { remaining: value }
        }
    }
}
