//! Integers with an N-bit prefix (RFC 7541 §5.1).

/// Appends `v` with an `n`-bit prefix whose high bits are `flags`.
pub(crate) fn encode(v: usize, n: u8, flags: u8, out: &mut Vec<u8>) {
    let max = (1usize << n) - 1;
    if v < max {
        out.push(flags | v as u8);
        return;
    }
    out.push(flags | max as u8);
    let mut rest = v - max;
    while rest >= 128 {
        out.push((rest % 128) as u8 | 0x80);
        rest /= 128;
    }
    out.push(rest as u8);
}

/// Reads an integer with an `n`-bit prefix from the start of `b`: its
/// value and the bytes it took; `None` if `b` ends first or the value
/// does not fit in 32 bits (no header size needs more).
pub(crate) fn decode(b: &[u8], n: u8) -> Option<(usize, usize)> {
    let max = (1usize << n) - 1;
    let first = usize::from(*b.first()?) & max;
    if first < max {
        return Some((first, 1));
    }
    let mut v = max;
    let mut shift = 0;
    for (i, &byte) in b.iter().enumerate().skip(1) {
        if shift > 28 {
            // Past 32 bits, even when the bytes add nothing (0x80 ...).
            return None;
        }
        v += usize::from(byte & 0x7f) << shift;
        if v > u32::MAX as usize {
            return None;
        }
        if byte & 0x80 == 0 {
            return Some((v, i + 1));
        }
        shift += 7;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc_examples() {
        // C.1.1-C.1.3: 10 in 5 bits, 1337 in 5 bits, 42 in 8 bits.
        for (v, n, wire) in [
            (10, 5, &[0x0a][..]),
            (1337, 5, &[0x1f, 0x9a, 0x0a][..]),
            (42, 8, &[0x2a][..]),
        ] {
            let mut out = Vec::new();
            encode(v, n, 0, &mut out);
            assert_eq!(out, wire);
            assert_eq!(decode(wire, n), Some((v, wire.len())));
        }
        assert_eq!(decode(&[0x1f, 0x9a], 5), None);
        assert_eq!(decode(&[0x1f, 0xff, 0xff, 0xff, 0xff, 0x7f], 5), None);
        // Continuation bytes that add nothing still end at 32 bits (found
        // by fuzzing: the shift overflowed).
        let mut long = vec![0x1f];
        long.extend([0x80; 100]);
        long.push(0x00);
        assert_eq!(decode(&long, 5), None);
    }
}
