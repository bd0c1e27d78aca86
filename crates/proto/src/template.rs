//! Request templates: a request encoded once, with placeholders left as
//! slots of fixed width that are filled in place for each request.
//!
//! Every value of a placeholder takes the same number of bytes (numbers are
//! zero-padded), so a request's length never changes: `Content-Length` is
//! computed once, at start, and sending a templated request costs a copy of
//! its bytes and the digits of its slots, nothing more.
//!
//! | placeholder | value | width |
//! |---|---|---|
//! | `{{seq}}`, `{{seq:W}}` | one sequence across the run: 0, 1, 2, ... (the same number everywhere in one request) | 10, or W (1 to 20) |
//! | `{{rand:A:B}}` | a uniform whole number from A to B | the digits of B |
//! | `{{hex:N}}` | N random hexadecimal digits | N (1 to 64) |
//! | `{{uuid}}` | a random (version 4) UUID | 36 |
//! | `{{env:NAME}}` | the environment variable, substituted once at start | its length |
//!
//! Placeholders work in the path and query (where a URL parser has
//! percent-encoded the braces), header values and the body.
//!
//! ```
//! use proto::template::{Fill, Template};
//! use proto::{RequestSpec, Target};
//!
//! struct Counter(u64);
//! impl Fill for Counter {
//!     fn seq(&mut self) -> u64 { self.0 += 1; self.0 - 1 }
//!     fn below(&mut self, n: u64) -> u64 { n - 1 }
//! }
//!
//! let mut spec = RequestSpec::get(Target::parse("http://h/item/{{seq:4}}").unwrap());
//! spec.method = "POST".into();
//! spec.body = b"{\"n\": {{rand:1:50}}}".to_vec();
//! let t = Template::new(&spec, &|_| None).unwrap();
//! let mut out = Vec::new();
//! t.render_into(&mut out, &mut Counter(7));
//! let s = String::from_utf8(out).unwrap();
//! assert!(s.starts_with("POST /item/0007 HTTP/1.1\r\n"), "{s}");
//! assert!(s.ends_with("Content-Length: 9\r\n\r\n{\"n\": 50}"), "{s}");
//! ```

use std::fmt;

use crate::{RequestError, RequestSpec};

/// What fills a slot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SlotKind {
    /// The run's next sequence number.
    Seq,
    /// A whole number from `lo` to `hi`, inclusive.
    Rand {
        /// Smallest value.
        lo: u64,
        /// Largest value.
        hi: u64,
    },
    /// Random hexadecimal digits.
    Hex,
    /// A random version 4 UUID.
    Uuid,
}

/// One placeholder's place in the encoded request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Slot {
    /// Offset of its first byte.
    pub at: usize,
    /// Its width in bytes.
    pub width: usize,
    /// What fills it.
    pub kind: SlotKind,
}

/// Where a template's values come from: the run's sequence and a random
/// number generator (seeded for repeatable runs).
pub trait Fill {
    /// The next number of the run's one sequence.
    fn seq(&mut self) -> u64;
    /// A uniform random number below `n` (`n` is at least 1).
    fn below(&mut self, n: u64) -> u64;
}

/// A placeholder that cannot be used, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TemplateError {
    /// A `{{name}}` that is none of the known placeholders, or whose
    /// arguments are wrong.
    Invalid {
        /// The placeholder as written.
        placeholder: String,
        /// What is wrong with it.
        reason: String,
    },
    /// `{{env:NAME}}` with `NAME` not set.
    MissingEnv(String),
    /// The request around the placeholders is not valid.
    Request(RequestError),
}

impl fmt::Display for TemplateError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TemplateError::Invalid {
                placeholder,
                reason,
            } => write!(f, "placeholder '{{{{{placeholder}}}}}': {reason}"),
            TemplateError::MissingEnv(name) => write!(
                f,
                "placeholder '{{{{env:{name}}}}}': the environment variable {name} is not set"
            ),
            TemplateError::Request(e) => e.fmt(f),
        }
    }
}

impl std::error::Error for TemplateError {}

/// A request's bytes with its slots (zero-filled until rendered).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Template {
    bytes: Vec<u8>,
    slots: Vec<Slot>,
}

impl Template {
    /// Encodes `spec` with its placeholders as slots. `env` looks up
    /// `{{env:NAME}}` (normally `std::env::var`); those are substituted
    /// here, once.
    pub fn new(
        spec: &RequestSpec,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Template, TemplateError> {
        // The body first, so that the encoded Content-Length is the
        // slotted body's (fixed) length.
        let (body, body_slots) = compile(&spec.body, env)?;
        let mut with_body = spec.clone();
        with_body.body = body;
        let encoded = with_body.encode().map_err(TemplateError::Request)?;
        let head_len = encoded.len() - with_body.body.len();
        let (mut bytes, mut slots) = compile(&encoded[..head_len], env)?;
        let shift = bytes.len();
        bytes.extend_from_slice(&with_body.body);
        slots.extend(body_slots.into_iter().map(|s| Slot {
            at: s.at + shift,
            ..s
        }));
        Ok(Template { bytes, slots })
    }

    /// The encoded request, slots zero-filled.
    pub fn bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// The slots, in order.
    pub fn slots(&self) -> &[Slot] {
        &self.slots
    }

    /// No slot: every request is the same bytes.
    pub fn is_static(&self) -> bool {
        self.slots.is_empty()
    }

    /// Appends one request to `out`, its slots filled from `fill`.
    pub fn render_into(&self, out: &mut Vec<u8>, fill: &mut impl Fill) {
        let base = out.len();
        out.extend_from_slice(&self.bytes);
        // Every `{{seq}}` of one request is the same number.
        let mut seq = None;
        for s in &self.slots {
            let dst = &mut out[base + s.at..base + s.at + s.width];
            match s.kind {
                SlotKind::Seq => decimal(dst, *seq.get_or_insert_with(|| fill.seq())),
                SlotKind::Rand { lo, hi } => {
                    let span = hi - lo;
                    let v = match span.checked_add(1) {
                        Some(n) => lo + fill.below(n),
                        None => fill.below(u64::MAX),
                    };
                    decimal(dst, v)
                }
                SlotKind::Hex => hex(dst, fill),
                SlotKind::Uuid => uuid(dst, fill),
            }
        }
    }
}

/// Whether `s` holds anything that looks like a placeholder, so that a
/// plain request can skip templating altogether.
pub fn has_placeholders(s: &[u8]) -> bool {
    find_open(s, 0).is_some()
}

const OPEN: [&[u8]; 2] = [b"{{", b"%7B%7B"];
const CLOSE: [&[u8]; 2] = [b"}}", b"%7D%7D"];

/// The next `{{` (or its percent-encoded form) at or after `from`: its
/// offset and the length of the opener.
fn find_open(s: &[u8], from: usize) -> Option<(usize, usize)> {
    (from..s.len()).find_map(|i| {
        OPEN.iter()
            .find(|o| s.len() - i >= o.len() && s[i..i + o.len()].eq_ignore_ascii_case(o))
            .map(|o| (i, o.len()))
    })
}

/// Copies `s`, turning each placeholder into a zero-filled slot (or, for
/// `env`, its value). Text between braces that is not a placeholder name
/// (JSON such as `{{"a":1}}`) is left as it is.
fn compile(
    s: &[u8],
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<(Vec<u8>, Vec<Slot>), TemplateError> {
    let mut out = Vec::with_capacity(s.len());
    let mut slots = Vec::new();
    let mut i = 0;
    while let Some((at, open_len)) = find_open(s, i) {
        out.extend_from_slice(&s[i..at]);
        let inner_from = at + open_len;
        let close = (inner_from..s.len()).find_map(|j| {
            CLOSE
                .iter()
                .find(|c| s.len() - j >= c.len() && s[j..j + c.len()].eq_ignore_ascii_case(c))
                .map(|c| (j, c.len()))
        });
        let name = close.and_then(|(j, _)| std::str::from_utf8(&s[inner_from..j]).ok());
        match (name.filter(|n| looks_like_placeholder(n)), close) {
            (Some(name), Some((j, close_len))) => {
                match parse_kind(name)? {
                    Parsed::Slot(kind, width) => {
                        slots.push(Slot {
                            at: out.len(),
                            width,
                            kind,
                        });
                        out.resize(out.len() + width, b'0');
                    }
                    Parsed::Env(var) => {
                        let v = env(var).ok_or_else(|| TemplateError::MissingEnv(var.into()))?;
                        out.extend_from_slice(v.as_bytes());
                    }
                }
                i = j + close_len;
            }
            _ => {
                out.extend_from_slice(&s[at..inner_from]);
                i = inner_from;
            }
        }
    }
    out.extend_from_slice(&s[i..]);
    Ok((out, slots))
}

/// A lower-case name, optionally followed by `:` and arguments.
fn looks_like_placeholder(n: &str) -> bool {
    let word = n.split(':').next().unwrap_or("");
    !word.is_empty()
        && word.bytes().all(|b| b.is_ascii_lowercase())
        && !n.contains(['"', '{', '}', ' '])
}

enum Parsed<'a> {
    Slot(SlotKind, usize),
    Env(&'a str),
}

fn parse_kind(name: &str) -> Result<Parsed<'_>, TemplateError> {
    let bad = |reason: &str| TemplateError::Invalid {
        placeholder: name.to_string(),
        reason: reason.to_string(),
    };
    let mut parts = name.split(':');
    let word = parts.next().unwrap_or("");
    let args: Vec<&str> = parts.collect();
    let number = |s: &str, what: &str| {
        s.parse::<u64>()
            .map_err(|_| bad(&format!("{what} '{s}' is not a whole number")))
    };
    match (word, args.as_slice()) {
        ("seq", []) => Ok(Parsed::Slot(SlotKind::Seq, 10)),
        ("seq", [w]) => match number(w, "width")? {
            w @ 1..=20 => Ok(Parsed::Slot(SlotKind::Seq, w as usize)),
            _ => Err(bad("the width must be from 1 to 20")),
        },
        ("rand", [a, b]) => {
            let (lo, hi) = (number(a, "lower bound")?, number(b, "upper bound")?);
            if lo > hi {
                return Err(bad("the lower bound is above the upper bound"));
            }
            Ok(Parsed::Slot(SlotKind::Rand { lo, hi }, digits(hi)))
        }
        ("hex", [n]) => match number(n, "length")? {
            n @ 1..=64 => Ok(Parsed::Slot(SlotKind::Hex, n as usize)),
            _ => Err(bad("the length must be from 1 to 64")),
        },
        ("uuid", []) => Ok(Parsed::Slot(SlotKind::Uuid, 36)),
        ("env", [var]) if !var.is_empty() => Ok(Parsed::Env(var)),
        _ => Err(bad(
            "expected seq, seq:WIDTH, rand:LOW:HIGH, hex:LENGTH, uuid or env:NAME",
        )),
    }
}

fn digits(mut n: u64) -> usize {
    let mut d = 1;
    while n >= 10 {
        n /= 10;
        d += 1;
    }
    d
}

/// Writes `v` zero-padded into `dst`, keeping its last `dst.len()` digits.
fn decimal(dst: &mut [u8], mut v: u64) {
    for b in dst.iter_mut().rev() {
        *b = b'0' + (v % 10) as u8;
        v /= 10;
    }
}

const HEX: &[u8; 16] = b"0123456789abcdef";

fn hex(dst: &mut [u8], fill: &mut impl Fill) {
    for chunk in dst.chunks_mut(16) {
        let mut r = fill.below(u64::MAX);
        for b in chunk {
            *b = HEX[(r & 15) as usize];
            r >>= 4;
        }
    }
}

fn uuid(dst: &mut [u8], fill: &mut impl Fill) {
    let (a, b) = (fill.below(u64::MAX), fill.below(u64::MAX));
    let mut bytes = [0u8; 16];
    bytes[..8].copy_from_slice(&a.to_le_bytes());
    bytes[8..].copy_from_slice(&b.to_le_bytes());
    bytes[6] = (bytes[6] & 0x0f) | 0x40; // version 4
    bytes[8] = (bytes[8] & 0x3f) | 0x80; // RFC 4122 variant
    let mut k = 0;
    for (i, byte) in bytes.iter().enumerate() {
        if matches!(i, 4 | 6 | 8 | 10) {
            dst[k] = b'-';
            k += 1;
        }
        dst[k] = HEX[(byte >> 4) as usize];
        dst[k + 1] = HEX[(byte & 15) as usize];
        k += 2;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Target;

    struct Seq(u64, u64);
    impl Fill for Seq {
        fn seq(&mut self) -> u64 {
            self.0 += 1;
            self.0 - 1
        }
        fn below(&mut self, n: u64) -> u64 {
            // A fixed, spread-out sequence: enough to see every digit move.
            self.1 = self
                .1
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            self.1 % n
        }
    }

    fn spec(url: &str, body: &str) -> RequestSpec {
        let mut s = RequestSpec::get(Target::parse(url).unwrap());
        s.body = body.as_bytes().to_vec();
        s
    }

    fn render(t: &Template, f: &mut Seq) -> String {
        let mut out = Vec::new();
        t.render_into(&mut out, f);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn every_placeholder_keeps_its_width() {
        let mut s = spec(
            "http://h/u/{{seq}}?r={{rand:5:120}}",
            "{{hex:20}} {{uuid}} {{seq:3}}",
        );
        s.headers.push(("X-Id".into(), "{{hex:4}}".into()));
        let t = Template::new(&s, &|_| None).unwrap();
        assert_eq!(t.slots().len(), 6);
        let mut f = Seq(998, 1);
        let mut lens = std::collections::BTreeSet::new();
        for _ in 0..50 {
            let r = render(&t, &mut f);
            lens.insert(r.len());
            let line = r.lines().next().unwrap();
            let n: u64 = line[7..17].parse().unwrap();
            assert!((998..1100).contains(&n), "{line}");
            let rand: u64 = line[20..23].parse().unwrap();
            assert!((5..=120).contains(&rand), "{line}");
            let body = r.split("\r\n\r\n").nth(1).unwrap();
            let parts: Vec<&str> = body.split(' ').collect();
            assert!(parts[0].len() == 20 && parts[0].bytes().all(|b| b.is_ascii_hexdigit()));
            let u = parts[1];
            assert_eq!((u.len(), &u[14..15], u.matches('-').count()), (36, "4", 4));
            assert!(matches!(&u[19..20], "8" | "9" | "a" | "b"), "{u}");
            assert_eq!(parts[2].len(), 3);
            assert!(r.contains("Content-Length: 61\r\n"), "{r}");
        }
        assert_eq!(lens.len(), 1, "every request has one length");
    }

    #[test]
    fn env_is_substituted_once_and_json_braces_are_left_alone() {
        let s = spec("http://h/{{env:WHO}}", "{{\"a\":{\"b\":1}}} {{env:WHO}}");
        let env = |k: &str| (k == "WHO").then(|| "me".to_string());
        let t = Template::new(&s, &env).unwrap();
        assert!(t.is_static());
        let r = render(&t, &mut Seq(0, 0));
        assert!(r.starts_with("GET /me HTTP/1.1"), "{r}");
        assert!(r.ends_with("{{\"a\":{\"b\":1}}} me"), "{r}");
        let e = Template::new(&spec("http://h/{{env:NOPE}}", ""), &|_| None).unwrap_err();
        assert!(e.to_string().contains("NOPE is not set"), "{e}");
    }

    #[test]
    fn bad_placeholders_say_what_is_wrong() {
        for (body, words) in [
            ("{{sequence}}", "expected seq"),
            ("{{rand:9:1}}", "above the upper"),
            ("{{rand:a:1}}", "not a whole number"),
            ("{{hex:0}}", "from 1 to 64"),
            ("{{seq:21}}", "from 1 to 20"),
        ] {
            let e = Template::new(&spec("http://h/", body), &|_| None).unwrap_err();
            assert!(e.to_string().contains(words), "{body}: {e}");
        }
        assert!(!has_placeholders(b"GET / HTTP/1.1\r\n\r\n"));
        assert!(has_placeholders(b"/%7b%7bseq%7d%7d"));
    }

    #[test]
    fn a_sequence_past_its_width_keeps_the_last_digits() {
        let t = Template::new(&spec("http://h/{{seq:2}}", ""), &|_| None).unwrap();
        assert!(render(&t, &mut Seq(123, 0)).starts_with("GET /23 "));
    }
}
