//! HPACK's Huffman code (RFC 7541 Appendix B). The code is canonical:
//! codes of one length are consecutive in symbol order, and each length's
//! first code follows the last of the length before, so the table is
//! just each symbol's code length, and both directions are derived from
//! it at compile time.

/// Code length in bits of each symbol, 0-255 and EOS (256).
const LENGTHS: [u8; 257] = [
    13, 23, 28, 28, 28, 28, 28, 28, 28, 24, 30, 28, 28, 30, 28, 28, 28, 28, 28, 28, 28, 28, 30, 28,
    28, 28, 28, 28, 28, 28, 28, 28, 6, 10, 10, 12, 13, 6, 8, 11, 10, 10, 8, 11, 8, 6, 6, 6, 5, 5,
    5, 6, 6, 6, 6, 6, 6, 6, 7, 8, 15, 6, 12, 10, 13, 6, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7,
    7, 7, 7, 7, 7, 7, 7, 7, 8, 7, 8, 13, 19, 13, 14, 6, 15, 5, 6, 5, 6, 5, 6, 6, 6, 5, 7, 7, 6, 6,
    6, 5, 6, 7, 6, 5, 5, 6, 7, 7, 7, 7, 7, 15, 11, 14, 13, 28, 20, 22, 20, 20, 22, 22, 22, 23, 22,
    23, 23, 23, 23, 23, 24, 23, 24, 24, 22, 23, 24, 23, 23, 23, 23, 21, 22, 23, 22, 23, 23, 24, 22,
    21, 20, 22, 22, 23, 23, 21, 23, 22, 22, 24, 21, 22, 23, 23, 21, 21, 22, 21, 23, 22, 23, 23, 20,
    22, 22, 22, 23, 22, 22, 23, 26, 26, 20, 19, 22, 23, 22, 25, 26, 26, 26, 27, 27, 26, 24, 25, 19,
    21, 26, 27, 27, 26, 27, 24, 21, 21, 26, 26, 28, 27, 27, 27, 20, 24, 20, 21, 22, 21, 21, 23, 22,
    22, 25, 25, 24, 24, 26, 23, 26, 27, 26, 26, 27, 27, 27, 27, 27, 28, 27, 27, 27, 27, 27, 26, 30,
];

const EOS: usize = 256;
const MAX_LEN: usize = 30;

/// Each symbol's code, right-aligned.
const CODES: [u32; 257] = codes();

/// Per length: the first code of that length, and where its symbols
/// start in `SORTED`.
const FIRST: [u32; MAX_LEN + 1] = firsts().0;
const OFFSET: [u16; MAX_LEN + 1] = firsts().1;
const COUNT: [u16; MAX_LEN + 1] = counts();
/// Symbols ordered by (length, symbol).
const SORTED: [u16; 257] = sorted();

const fn counts() -> [u16; MAX_LEN + 1] {
    let mut c = [0u16; MAX_LEN + 1];
    let mut s = 0;
    while s < 257 {
        c[LENGTHS[s] as usize] += 1;
        s += 1;
    }
    c
}

const fn firsts() -> ([u32; MAX_LEN + 1], [u16; MAX_LEN + 1]) {
    let c = counts();
    let mut first = [0u32; MAX_LEN + 1];
    let mut offset = [0u16; MAX_LEN + 1];
    let mut code = 0u32;
    let mut at = 0u16;
    let mut len = 1;
    while len <= MAX_LEN {
        code <<= 1;
        first[len] = code;
        offset[len] = at;
        code += c[len] as u32;
        at += c[len];
        len += 1;
    }
    (first, offset)
}

const fn sorted() -> [u16; 257] {
    let (_, offset) = firsts();
    let mut next = offset;
    let mut out = [0u16; 257];
    let mut s = 0;
    while s < 257 {
        let l = LENGTHS[s] as usize;
        out[next[l] as usize] = s as u16;
        next[l] += 1;
        s += 1;
    }
    out
}

const fn codes() -> [u32; 257] {
    let (first, offset) = firsts();
    let order = sorted();
    let mut out = [0u32; 257];
    let mut i = 0;
    while i < 257 {
        let s = order[i] as usize;
        let l = LENGTHS[s] as usize;
        out[s] = first[l] + (i as u32 - offset[l] as u32);
        i += 1;
    }
    out
}

/// How many bytes `raw` takes Huffman-coded.
pub fn encoded_len(raw: &[u8]) -> usize {
    let bits: usize = raw.iter().map(|&b| LENGTHS[b as usize] as usize).sum();
    bits.div_ceil(8)
}

/// Appends `raw` Huffman-coded, padded with the EOS prefix (ones).
pub fn encode(raw: &[u8], out: &mut Vec<u8>) {
    let mut acc: u64 = 0;
    let mut bits = 0u32;
    for &b in raw {
        let l = u32::from(LENGTHS[b as usize]);
        acc = (acc << l) | u64::from(CODES[b as usize]);
        bits += l;
        while bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
        }
    }
    if bits > 0 {
        let pad = 8 - bits;
        out.push(((acc << pad) | ((1 << pad) - 1)) as u8);
    }
}

/// Why a Huffman string does not decode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HuffmanError {
    /// The EOS symbol inside the string.
    Eos,
    /// Padding longer than 7 bits, or not all ones.
    Padding,
}

/// Appends the decoded `coded` to `out`.
pub fn decode(coded: &[u8], out: &mut Vec<u8>) -> Result<(), HuffmanError> {
    let mut code = 0u32;
    let mut len = 0usize;
    for &byte in coded {
        for i in (0..8).rev() {
            code = (code << 1) | u32::from((byte >> i) & 1);
            len += 1;
            let rel = code.wrapping_sub(FIRST[len]);
            if code >= FIRST[len] && rel < u32::from(COUNT[len]) {
                let sym = SORTED[(u32::from(OFFSET[len]) + rel) as usize] as usize;
                if sym == EOS {
                    return Err(HuffmanError::Eos);
                }
                out.push(sym as u8);
                code = 0;
                len = 0;
            } else if len >= MAX_LEN {
                return Err(HuffmanError::Eos);
            }
        }
    }
    // What is left must be a prefix of EOS (all ones), shorter than a byte.
    if len > 7 || code != (1 << len) - 1 {
        return Err(HuffmanError::Padding);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_is_the_rfcs() {
        // Spot checks against RFC 7541 Appendix B.
        assert_eq!((CODES[0], LENGTHS[0]), (0x1ff8, 13));
        assert_eq!((CODES[b'0' as usize], LENGTHS[b'0' as usize]), (0x0, 5));
        assert_eq!((CODES[b' ' as usize], LENGTHS[b' ' as usize]), (0x14, 6));
        assert_eq!((CODES[b'a' as usize], LENGTHS[b'a' as usize]), (0x3, 5));
        assert_eq!((CODES[10], LENGTHS[10]), (0x3fff_fffc, 30));
        assert_eq!((CODES[EOS], LENGTHS[EOS]), (0x3fff_ffff, 30));
    }

    #[test]
    fn round_trips_every_byte() {
        let raw: Vec<u8> = (0..=255u8)
            .chain(b"www.example.com".iter().copied())
            .collect();
        let mut coded = Vec::new();
        encode(&raw, &mut coded);
        assert_eq!(coded.len(), encoded_len(&raw));
        let mut back = Vec::new();
        decode(&coded, &mut back).unwrap();
        assert_eq!(back, raw);
    }

    #[test]
    fn rfc_example_and_bad_padding() {
        // RFC 7541 C.4.1: "www.example.com".
        let coded = [
            0xf1, 0xe3, 0xc2, 0xe5, 0xf2, 0x3a, 0x6b, 0xa0, 0xab, 0x90, 0xf4, 0xff,
        ];
        let mut out = Vec::new();
        decode(&coded, &mut out).unwrap();
        assert_eq!(out, b"www.example.com");
        let mut mine = Vec::new();
        encode(b"www.example.com", &mut mine);
        assert_eq!(mine, coded);
        // A whole byte of padding, and padding with a zero in it.
        assert_eq!(decode(&[0xff], &mut Vec::new()), Err(HuffmanError::Padding));
        assert_eq!(decode(&[0x1e], &mut Vec::new()), Err(HuffmanError::Padding));
    }
}
