//! Our HPACK decoder against nghttp2's inflater on arbitrary header
//! blocks (two on one connection, so that the first's table feeds the
//! second): both accept with the same fields, or both refuse; ours never
//! panics.
#![no_main]

use libfuzzer_sys::fuzz_target;
use libnghttp2_sys as ng;
use proto::h2::hpack::Decoder;

type Fields = Vec<(Vec<u8>, Vec<u8>)>;

fn theirs(inflater: *mut ng::nghttp2_hd_inflater, mut input: &[u8]) -> Option<Fields> {
    let mut out = Vec::new();
    loop {
        let mut nv = std::mem::MaybeUninit::<ng::nghttp2_nv>::zeroed();
        let mut flags = 0;
        // SAFETY: `input` lives for the call; an emitted field is copied
        // before the next call.
        let n = unsafe {
            ng::nghttp2_hd_inflate_hd2(inflater, nv.as_mut_ptr(), &mut flags, input.as_ptr(), input.len(), 1)
        };
        if n < 0 {
            return None;
        }
        input = &input[n as usize..];
        if flags & ng::NGHTTP2_HD_INFLATE_EMIT as i32 != 0 {
            // SAFETY: EMIT: nv is a field nghttp2 owns until the next call.
            let nv = unsafe { nv.assume_init() };
            // SAFETY: its name and value are nghttp2's until the next
            // call, and are copied here.
            out.push(unsafe {
                (
                    std::slice::from_raw_parts(nv.name, nv.namelen).to_vec(),
                    std::slice::from_raw_parts(nv.value, nv.valuelen).to_vec(),
                )
            });
        }
        if flags & ng::NGHTTP2_HD_INFLATE_FINAL as i32 != 0 {
            // SAFETY: the inflater is live.
            unsafe { ng::nghttp2_hd_inflate_end_headers(inflater) };
            return Some(out);
        }
        if flags & ng::NGHTTP2_HD_INFLATE_EMIT as i32 == 0 && input.is_empty() {
            return Some(out);
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&cut, rest)) = data.split_first() else { return };
    let cut = (cut as usize).min(rest.len());
    let mut inflater = std::ptr::null_mut();
    // SAFETY: nghttp2 makes the inflater; it is freed below.
    assert_eq!(unsafe { ng::nghttp2_hd_inflate_new(&mut inflater) }, 0);
    let mut decoder = Decoder::new(4096);
    for block in [&rest[..cut], &rest[cut..]] {
        let mut ours = Vec::new();
        let mine = decoder
            .decode(block, |n, v| ours.push((n.to_vec(), v.to_vec())))
            .ok()
            .map(|()| ours);
        let reference = theirs(inflater, block);
        assert_eq!(mine, reference, "block {block:02x?}");
        if mine.is_none() {
            break;
        }
    }
    // SAFETY: made above, freed once.
    unsafe { ng::nghttp2_hd_inflate_del(inflater) };
});
