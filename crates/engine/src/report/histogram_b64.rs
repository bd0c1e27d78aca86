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

pub(crate) fn decode(s: &str) -> Result<Histogram<u64>, String> {
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(s)
        .map_err(|e| e.to_string())?;
    Deserializer::new()
        .deserialize(&mut bytes.as_slice())
        .map_err(|e| format!("{e:?}"))
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
