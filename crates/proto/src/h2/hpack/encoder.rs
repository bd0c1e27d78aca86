//! Encoding request fields for templates (RFC 7541 §6.1-6.2).

use super::huffman;
use super::integer;
use super::table::STATIC;

/// Appends one field: the static entry when it has both name and value,
/// else a literal never indexed (with the static name's index when there
/// is one), so that the block depends on no table state. Strings are
/// Huffman-coded when that is shorter. Names must be lowercase (RFC 9113
/// §8.2.1); the caller lowercases them.
pub fn encode_field(name: &[u8], value: &[u8], out: &mut Vec<u8>) {
    if let Some(i) = STATIC
        .iter()
        .position(|&(n, v)| n == name && v == value && !v.is_empty())
    {
        integer::encode(i + 1, 7, 0x80, out);
        return;
    }
    match STATIC.iter().position(|&(n, _)| n == name) {
        Some(i) => integer::encode(i + 1, 4, 0x10, out),
        None => {
            out.push(0x10);
            string(name, out);
        }
    }
    string(value, out);
}

/// Appends a dynamic table size update (§6.3): what a block starts with
/// after the peer lowered its SETTINGS_HEADER_TABLE_SIZE.
pub fn encode_size_update(size: usize, out: &mut Vec<u8>) {
    integer::encode(size, 5, 0x20, out);
}

fn string(s: &[u8], out: &mut Vec<u8>) {
    let coded = huffman::encoded_len(s);
    if coded < s.len() {
        integer::encode(coded, 7, 0x80, out);
        huffman::encode(s, out);
    } else {
        integer::encode(s.len(), 7, 0, out);
        out.extend_from_slice(s);
    }
}
