//! Histograms in JSON as HdrHistogram's V2 compressed encoding in base64,
//! the form HdrHistogram's own tools exchange, so reports from several
//! machines can be merged exactly.

use base64::Engine;
use hdrhistogram::serialization::{Deserializer, Serializer, V2DeflateSerializer};
use hdrhistogram::Histogram;
use serde::de::Error as _;
use serde::ser::Error as _;

pub(crate) fn encode(h: &Histogram<u64>) -> Result<String, String> {
    let mut bytes = Vec::new();
    V2DeflateSerializer::new()
        .serialize(h, &mut bytes)
        .map_err(|e| format!("{e:?}"))?;
    Ok(base64::engine::general_purpose::STANDARD.encode(bytes))
}

/// A decoded histogram grows with what is added to it: its encoding keeps
/// only the range its own samples needed, and a merge adds another run's
/// samples, which may lie past that range (a longer first byte on another
/// machine). Without growing, `add` refuses and the samples are lost.
pub(crate) fn decode(s: &str) -> Result<Histogram<u64>, String> {
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(s)
        .map_err(|e| e.to_string())?;
    let mut h: Histogram<u64> = Deserializer::new()
        .deserialize(&mut bytes.as_slice())
        .map_err(|e| format!("{e:?}"))?;
    h.auto(true);
    Ok(h)
}

pub(crate) fn serialize<S: serde::Serializer>(h: &Histogram<u64>, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&encode(h).map_err(S::Error::custom)?)
}

pub(crate) fn deserialize<'de, D: serde::Deserializer<'de>>(
    d: D,
) -> Result<Histogram<u64>, D::Error> {
    let s: String = serde::Deserialize::deserialize(d)?;
    decode(&s).map_err(D::Error::custom)
}

/// The same for a histogram that may be absent.
pub(crate) mod option {
    use super::*;

    pub(crate) fn serialize<S: serde::Serializer>(
        h: &Option<Histogram<u64>>,
        s: S,
    ) -> Result<S::Ok, S::Error> {
        match h {
            Some(h) => super::serialize(h, s),
            None => s.serialize_none(),
        }
    }

    pub(crate) fn deserialize<'de, D: serde::Deserializer<'de>>(
        d: D,
    ) -> Result<Option<Histogram<u64>>, D::Error> {
        let s: Option<String> = serde::Deserialize::deserialize(d)?;
        s.map(|s| decode(&s).map_err(D::Error::custom)).transpose()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Two runs' histograms of unlike ranges merge without losing a
    /// sample, whichever comes first.
    #[test]
    fn decoded_histograms_take_samples_past_their_range() {
        let mut small = crate::report::stats::new_growing_histogram();
        small.record(40).unwrap();
        let mut big = crate::report::stats::new_growing_histogram();
        big.record(3_000_000).unwrap();
        let mut a = decode(&encode(&small).unwrap()).unwrap();
        let b = decode(&encode(&big).unwrap()).unwrap();
        assert!(a.high() < 3_000_000, "the encoding kept a small range");
        a.add(&b).unwrap();
        assert_eq!(a.len(), 2);
        assert!(a.equivalent(a.max(), 3_000_000));
    }
}
