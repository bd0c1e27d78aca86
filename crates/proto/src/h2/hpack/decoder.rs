//! Decoding header blocks (RFC 7541 §6).

use std::fmt;

use super::huffman;
use super::integer;
use super::table::Dynamic;

/// Why a header block cannot be decoded: a connection error
/// (COMPRESSION_ERROR), since the table may now differ from the peer's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HpackError {
    /// The block ends inside a field.
    Truncated,
    /// An integer past 32 bits.
    Overflow,
    /// An index that names no entry.
    BadIndex(usize),
    /// A Huffman string that does not decode.
    Huffman,
    /// A table size above what our settings allow.
    TableTooLarge(usize),
    /// A table size update after the block's first field.
    LateSizeUpdate,
    /// A string longer than the decoder takes.
    TooLong(usize),
}

impl fmt::Display for HpackError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HpackError::Truncated => f.write_str("a header block ends inside a field"),
            HpackError::Overflow => f.write_str("a header block has an integer too large"),
            HpackError::BadIndex(i) => write!(
                f,
                "a header block names table entry {i}, which does not exist"
            ),
            HpackError::Huffman => f.write_str("a header block has a malformed Huffman string"),
            HpackError::TableTooLarge(n) => {
                write!(
                    f,
                    "a header block sets the table to {n} bytes, above the limit we announced"
                )
            }
            HpackError::LateSizeUpdate => {
                f.write_str("a header block updates the table size after a field")
            }
            HpackError::TooLong(n) => write!(f, "a header block has a {n}-byte string"),
        }
    }
}

impl std::error::Error for HpackError {}

/// Longest name or value taken, decoded.
const MAX_STRING: usize = 64 * 1024;

/// A connection's decoder: its dynamic table, and scratch space for
/// Huffman strings, reused from block to block.
#[derive(Debug, Clone)]
pub struct Decoder {
    table: Dynamic,
    /// The most the peer may set the table to (our SETTINGS_HEADER_TABLE_SIZE).
    limit: usize,
    name: Vec<u8>,
    value: Vec<u8>,
}

/// Where a decoded string is: in the block, or in a scratch buffer.
enum Str {
    Block(usize, usize),
    Name,
    Value,
}

impl Decoder {
    /// A decoder whose table may grow to `limit` bytes (4096 unless our
    /// settings said otherwise).
    pub fn new(limit: usize) -> Decoder {
        Decoder {
            table: Dynamic::new(limit),
            limit,
            name: Vec::new(),
            value: Vec::new(),
        }
    }

    /// The dynamic table's size in bytes, and its entries.
    pub fn table(&self) -> (usize, usize) {
        (self.table.size(), self.table.len())
    }

    /// Decodes a whole header block (HEADERS and its CONTINUATIONs
    /// joined), handing each field to `field` in order.
    pub fn decode(
        &mut self,
        block: &[u8],
        mut field: impl FnMut(&[u8], &[u8]),
    ) -> Result<(), HpackError> {
        let mut at = 0;
        let mut fields = 0;
        while at < block.len() {
            let b = block[at];
            if b & 0x80 != 0 {
                // Indexed field.
                let (i, n) = integer::decode(&block[at..], 7).ok_or(HpackError::Truncated)?;
                at += n;
                let (name, value) = self.table.get(i).ok_or(HpackError::BadIndex(i))?;
                field(name, value);
                fields += 1;
            } else if b & 0xe0 == 0x20 {
                // Table size update: only before the first field.
                if fields > 0 {
                    return Err(HpackError::LateSizeUpdate);
                }
                let (size, n) = integer::decode(&block[at..], 5).ok_or(HpackError::Truncated)?;
                at += n;
                if size > self.limit {
                    return Err(HpackError::TableTooLarge(size));
                }
                self.table.resize(size);
            } else {
                // A literal: with incremental indexing (01), without (0000)
                // or never indexed (0001).
                let (prefix, index) = if b & 0x40 != 0 { (6, true) } else { (4, false) };
                let (i, n) = integer::decode(&block[at..], prefix).ok_or(HpackError::Truncated)?;
                at += n;
                let name = match i {
                    0 => {
                        let (s, n) = self.string(&block[at..], true)?;
                        let s = shift(s, at);
                        at += n;
                        Some(s)
                    }
                    i => {
                        self.table.get(i).ok_or(HpackError::BadIndex(i))?;
                        None
                    }
                };
                let (v, n) = self.string(&block[at..], false)?;
                let v = shift(v, at);
                at += n;
                let name_bytes: &[u8] = match &name {
                    None => self.table.get(i).map_or(&[][..], |(n, _)| n),
                    Some(s) => self.bytes(block, s),
                };
                let value_bytes = self.bytes(block, &v);
                field(name_bytes, value_bytes);
                if index {
                    let (n, v) = (name_bytes.to_vec(), value_bytes.to_vec());
                    self.table.insert(&n, &v);
                }
                fields += 1;
            }
        }
        Ok(())
    }

    fn bytes<'a>(&'a self, block: &'a [u8], s: &Str) -> &'a [u8] {
        match *s {
            Str::Block(a, b) => &block[a..b],
            Str::Name => &self.name,
            Str::Value => &self.value,
        }
    }

    /// A string literal at the start of `b`: where its bytes are (relative
    /// to `b`, or decoded into scratch), and the bytes it took.
    fn string(&mut self, b: &[u8], is_name: bool) -> Result<(Str, usize), HpackError> {
        let huffman = b.first().ok_or(HpackError::Truncated)? & 0x80 != 0;
        let (len, n) = integer::decode(b, 7).ok_or(HpackError::Truncated)?;
        if len > MAX_STRING {
            return Err(HpackError::TooLong(len));
        }
        let end = n + len;
        let raw = b.get(n..end).ok_or(HpackError::Truncated)?;
        if !huffman {
            return Ok((Str::Block(n, end), end));
        }
        let out = if is_name {
            &mut self.name
        } else {
            &mut self.value
        };
        out.clear();
        huffman::decode(raw, out).map_err(|_| HpackError::Huffman)?;
        Ok((if is_name { Str::Name } else { Str::Value }, end))
    }
}

/// A string found in a slice that starts `at` bytes into the block.
fn shift(s: Str, at: usize) -> Str {
    match s {
        Str::Block(a, b) => Str::Block(a + at, b + at),
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(s: &str) -> Vec<u8> {
        let s: String = s.chars().filter(|c| !c.is_whitespace()).collect();
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    fn fields(d: &mut Decoder, block: &[u8]) -> Vec<(String, String)> {
        let mut out = Vec::new();
        d.decode(block, |n, v| {
            out.push((
                String::from_utf8_lossy(n).into_owned(),
                String::from_utf8_lossy(v).into_owned(),
            ))
        })
        .unwrap();
        out
    }

    /// RFC 7541 C.3 (requests without Huffman) and C.4 (the same with
    /// Huffman): one decoder across the three, as on one connection.
    #[test]
    fn rfc_request_examples() {
        for blocks in [
            [
                "8286 8441 0f77 7777 2e65 7861 6d70 6c65 2e63 6f6d",
                "8286 84be 5808 6e6f 2d63 6163 6865",
                "8287 85bf 400a 6375 7374 6f6d 2d6b 6579 0c63 7573 746f 6d2d 7661 6c75 65",
            ],
            [
                "8286 8441 8cf1 e3c2 e5f2 3a6b a0ab 90f4 ff",
                "8286 84be 5886 a8eb 1064 9cbf",
                "8287 85bf 4088 25a8 49e9 5ba9 7d7f 8925 a849 e95b b8e8 b4bf",
            ],
        ] {
            let mut d = Decoder::new(4096);
            let first = fields(&mut d, &hex(blocks[0]));
            assert_eq!(first[3], (":authority".into(), "www.example.com".into()));
            assert_eq!(d.table(), (57, 1));
            let second = fields(&mut d, &hex(blocks[1]));
            assert_eq!(second[3], (":authority".into(), "www.example.com".into()));
            assert_eq!(second[4], ("cache-control".into(), "no-cache".into()));
            assert_eq!(d.table(), (110, 2));
            let third = fields(&mut d, &hex(blocks[2]));
            assert_eq!(third[1], (":scheme".into(), "https".into()));
            assert_eq!(third[2], (":path".into(), "/index.html".into()));
            assert_eq!(third[4], ("custom-key".into(), "custom-value".into()));
            assert_eq!(d.table(), (164, 3));
        }
    }

    #[test]
    fn bad_blocks_are_errors() {
        let mut d = Decoder::new(4096);
        assert_eq!(d.decode(&[0xbe], |_, _| {}), Err(HpackError::BadIndex(62)));
        assert_eq!(d.decode(&[0x80], |_, _| {}), Err(HpackError::BadIndex(0)));
        assert_eq!(
            d.decode(&[0x41, 0x05, b'a'], |_, _| {}),
            Err(HpackError::Truncated)
        );
        // A size update above our limit, and one after a field.
        assert_eq!(
            d.decode(&[0x3f, 0xe2, 0x1f], |_, _| {}),
            Err(HpackError::TableTooLarge(4097))
        );
        assert_eq!(
            d.decode(&[0x82, 0x20], |_, _| {}),
            Err(HpackError::LateSizeUpdate)
        );
        // A size update to zero empties the table.
        let mut d = Decoder::new(4096);
        fields(
            &mut d,
            &hex("8286 8441 0f77 7777 2e65 7861 6d70 6c65 2e63 6f6d"),
        );
        assert_eq!(d.table(), (57, 1));
        d.decode(&[0x20, 0x82], |_, _| {}).unwrap();
        assert_eq!(d.table(), (0, 0));
    }
}
