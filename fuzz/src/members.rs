//! A JSON object's members in order, values raw: the oracle the frame
//! properties compare the relay's output with.

use serde::de::{MapAccess, Visitor};
use serde::{Deserialize, Deserializer};
use serde_json::value::RawValue;
use std::fmt;

/// Members of one JSON object, in order, duplicates kept.
pub struct Members(pub Vec<(String, Box<RawValue>)>);

impl<'de> Deserialize<'de> for Members {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Members;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Members, A::Error> {
                let mut v = Vec::new();
                while let Some(entry) = map.next_entry::<String, Box<RawValue>>()? {
                    v.push(entry);
                }
                Ok(Members(v))
            }
        }
        d.deserialize_map(V)
    }
}

impl Members {
    /// Parses `text` (which the relay accepted, so it must parse).
    pub fn of(text: &str) -> Members {
        serde_json::from_str(text)
            .unwrap_or_else(|e| panic!("relay accepted a frame that is not a JSON object: {e}"))
    }

    pub fn has(&self, key: &str) -> bool {
        self.0.iter().any(|(k, _)| k == key)
    }

    pub fn count(&self, key: &str) -> usize {
        self.0.iter().filter(|(k, _)| k == key).count()
    }

    pub fn get(&self, key: &str) -> Option<&str> {
        self.0.iter().find(|(k, _)| k == key).map(|(_, v)| v.get())
    }
}

/// Checks what the relay sends on after splicing its own members into a
/// frame: a JSON object holding, in order, every member of `raw` whose key
/// is not in `replaced` (values byte for byte), then each of `added` exactly
/// once with the relay's value. When `raw` held none of `replaced`, its text
/// is kept byte for byte up to its closing brace.
pub fn check_spliced(raw: &str, out: &str, replaced: &[&str], added: &[(&str, &str)]) {
    let before = Members::of(raw);
    let after = Members::of(out);
    let kept: Vec<_> = before
        .0
        .iter()
        .filter(|(k, _)| !replaced.contains(&k.as_str()))
        .collect();
    assert_eq!(
        after.0.len(),
        kept.len() + added.len(),
        "spliced frame has the wrong members: {raw:?} -> {out:?}"
    );
    for ((k, v), (k2, v2)) in kept.iter().zip(after.0.iter()) {
        assert_eq!(k, k2, "member order changed: {raw:?} -> {out:?}");
        assert_eq!(
            v.get(),
            v2.get(),
            "member value changed: {raw:?} -> {out:?}"
        );
    }
    for ((k, v), (k2, v2)) in added.iter().zip(after.0[kept.len()..].iter()) {
        assert_eq!(*k, k2, "relay member missing: {raw:?} -> {out:?}");
        assert_eq!(*v, v2.get(), "relay member value wrong: {raw:?} -> {out:?}");
    }
    for (k, _) in added {
        assert_eq!(after.count(k), 1, "{k} not exactly once: {out:?}");
    }
    if !replaced.iter().any(|k| before.has(k)) {
        assert!(
            out.starts_with(&raw[..raw.len() - 1]),
            "untouched frame re-serialised: {raw:?} -> {out:?}"
        );
    }
}
