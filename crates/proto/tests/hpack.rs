//! HPACK against the reference: nghttp2's deflater (dynamic table,
//! Huffman, evictions) encodes, our decoder must read the same fields;
//! our encoder's template blocks must read back the same through
//! nghttp2's inflater.

use libnghttp2_sys as ng;
use proptest::prelude::*;
use proto::h2::hpack::{encode_field, encode_size_update, Decoder};

type Fields = Vec<(Vec<u8>, Vec<u8>)>;

/// nghttp2's deflater, for one connection's blocks.
struct Deflater(*mut ng::nghttp2_hd_deflater);

impl Deflater {
    fn new(table: usize) -> Deflater {
        let mut d = std::ptr::null_mut();
        // SAFETY: nghttp2 writes a new deflater into `d`.
        assert_eq!(unsafe { ng::nghttp2_hd_deflate_new(&mut d, table) }, 0);
        Deflater(d)
    }

    fn block(&mut self, fields: &Fields) -> Vec<u8> {
        let nva: Vec<ng::nghttp2_nv> = fields
            .iter()
            .map(|(n, v)| ng::nghttp2_nv {
                name: n.as_ptr() as *mut u8,
                value: v.as_ptr() as *mut u8,
                namelen: n.len(),
                valuelen: v.len(),
                flags: ng::NGHTTP2_NV_FLAG_NONE as u8,
            })
            .collect();
        // SAFETY: `nva` points into `fields`, alive for these calls; the
        // buffer is as long as nghttp2's bound says it must be.
        unsafe {
            let bound = ng::nghttp2_hd_deflate_bound(self.0, nva.as_ptr(), nva.len());
            let mut out = vec![0u8; bound];
            let n =
                ng::nghttp2_hd_deflate_hd(self.0, out.as_mut_ptr(), bound, nva.as_ptr(), nva.len());
            assert!(n >= 0, "deflate failed: {n}");
            out.truncate(n as usize);
            out
        }
    }
}

impl Drop for Deflater {
    fn drop(&mut self) {
        // SAFETY: made by nghttp2_hd_deflate_new, freed once.
        unsafe { ng::nghttp2_hd_deflate_del(self.0) }
    }
}

/// nghttp2's inflater: a block's fields, or its error code.
struct Inflater(*mut ng::nghttp2_hd_inflater);

impl Inflater {
    fn new() -> Inflater {
        let mut i = std::ptr::null_mut();
        // SAFETY: nghttp2 writes a new inflater into `i`.
        assert_eq!(unsafe { ng::nghttp2_hd_inflate_new(&mut i) }, 0);
        Inflater(i)
    }

    fn block(&mut self, mut input: &[u8]) -> Result<Fields, isize> {
        let mut out = Vec::new();
        loop {
            let mut nv = std::mem::MaybeUninit::<ng::nghttp2_nv>::zeroed();
            let mut flags = 0;
            // SAFETY: `input` is alive for the call; the emitted field's
            // pointers are read before the next call.
            let n = unsafe {
                ng::nghttp2_hd_inflate_hd2(
                    self.0,
                    nv.as_mut_ptr(),
                    &mut flags,
                    input.as_ptr(),
                    input.len(),
                    1,
                )
            };
            if n < 0 {
                return Err(n);
            }
            input = &input[n as usize..];
            if flags & ng::NGHTTP2_HD_INFLATE_EMIT as i32 != 0 {
                // SAFETY: EMIT says nv holds a field nghttp2 owns until the next call.
                let nv = unsafe { nv.assume_init() };
                // SAFETY: its name and value are nghttp2's until the next
                // call, and are copied here.
                let (n, v) = unsafe {
                    (
                        std::slice::from_raw_parts(nv.name, nv.namelen).to_vec(),
                        std::slice::from_raw_parts(nv.value, nv.valuelen).to_vec(),
                    )
                };
                out.push((n, v));
            }
            if flags & ng::NGHTTP2_HD_INFLATE_FINAL as i32 != 0 {
                // SAFETY: the inflater is ours.
                unsafe { ng::nghttp2_hd_inflate_end_headers(self.0) };
                return Ok(out);
            }
            if flags & ng::NGHTTP2_HD_INFLATE_EMIT as i32 == 0 && input.is_empty() {
                return Ok(out);
            }
        }
    }
}

impl Drop for Inflater {
    fn drop(&mut self) {
        // SAFETY: made by nghttp2_hd_inflate_new, freed once.
        unsafe { ng::nghttp2_hd_inflate_del(self.0) }
    }
}

fn ours(d: &mut Decoder, block: &[u8]) -> Fields {
    let mut out = Vec::new();
    d.decode(block, |n, v| out.push((n.to_vec(), v.to_vec())))
        .unwrap_or_else(|e| panic!("{e}: {block:02x?}"));
    out
}

/// Header names and values as responses carry them: a few repeated (so
/// the dynamic table is used), some long (so entries are evicted), any
/// bytes in values.
fn field() -> impl Strategy<Value = (Vec<u8>, Vec<u8>)> {
    let name = prop_oneof![
        Just(b":status".to_vec()),
        Just(b"server".to_vec()),
        Just(b"content-type".to_vec()),
        Just(b"x-trace-id".to_vec()),
        "[a-z][a-z0-9-]{0,24}".prop_map(String::into_bytes),
    ];
    let value = prop_oneof![
        Just(b"200".to_vec()),
        Just(b"nginx".to_vec()),
        Just(b"text/plain".to_vec()),
        proptest::collection::vec(any::<u8>(), 0..300),
    ];
    (name, value)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    /// A connection of several blocks, each deflated by nghttp2 with a
    /// table of the given size, reads back field for field.
    #[test]
    fn nghttp2_blocks_decode_the_same(
        table in prop_oneof![Just(0usize), Just(256), Just(4096)],
        blocks in proptest::collection::vec(proptest::collection::vec(field(), 1..12), 1..8),
    ) {
        let mut deflater = Deflater::new(table);
        let mut decoder = Decoder::new(4096);
        for fields in &blocks {
            let block = deflater.block(fields);
            prop_assert_eq!(&ours(&mut decoder, &block), fields);
        }
    }

    /// Our template fields read back the same through nghttp2, block
    /// after block on one inflater (none touches its table).
    #[test]
    fn our_blocks_inflate_the_same(
        blocks in proptest::collection::vec(proptest::collection::vec(field(), 1..12), 1..4),
    ) {
        let mut inflater = Inflater::new();
        for fields in &blocks {
            let mut block = Vec::new();
            for (n, v) in fields {
                encode_field(n, v, &mut block);
            }
            prop_assert_eq!(&inflater.block(&block).unwrap(), fields);
        }
    }
}

#[test]
fn a_request_template_uses_static_entries_and_is_stable() {
    let fields: Fields = vec![
        (b":method".to_vec(), b"GET".to_vec()),
        (b":scheme".to_vec(), b"https".to_vec()),
        (b":path".to_vec(), b"/".to_vec()),
        (b":authority".to_vec(), b"example.com:8443".to_vec()),
        (b"user-agent".to_vec(), b"urk/0.1.0".to_vec()),
    ];
    let mut block = Vec::new();
    encode_field(b":method", b"GET", &mut block);
    encode_field(b":scheme", b"https", &mut block);
    encode_field(b":path", b"/", &mut block);
    assert_eq!(block, [0x82, 0x87, 0x84]);
    encode_field(b":authority", b"example.com:8443", &mut block);
    // Never indexed, with the static name :authority (1).
    assert_eq!(block[3], 0x11);
    encode_field(b"user-agent", b"urk/0.1.0", &mut block);
    // The same block, sent again and again, reads the same every time:
    // nothing in it changed the peer's table.
    let mut inflater = Inflater::new();
    for _ in 0..3 {
        assert_eq!(inflater.block(&block).unwrap(), fields);
    }
    // A size update first (after the peer lowered its table) is taken.
    let mut updated = Vec::new();
    encode_size_update(0, &mut updated);
    updated.extend_from_slice(&block);
    assert_eq!(updated[0], 0x20);
    assert_eq!(Inflater::new().block(&updated).unwrap(), fields);
}

#[test]
fn what_nghttp2_refuses_we_refuse() {
    // An integer of continuation bytes that add nothing (found by the
    // fuzz target: the shift overflowed).
    let mut long = vec![0x3f];
    long.extend([0x80; 100]);
    long.push(0x00);
    for bad in [
        &[0xbe][..],
        &[0x80],
        &[0x41, 0x05, b'a'],
        &[0x82, 0x20],
        &long,
    ] {
        assert!(Inflater::new().block(bad).is_err(), "{bad:02x?}");
        assert!(
            Decoder::new(4096).decode(bad, |_, _| {}).is_err(),
            "{bad:02x?}"
        );
    }
}
