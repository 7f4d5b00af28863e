//! The one canonical JSON writer: sorted keys, no insignificant whitespace. Config,
//! manifest, index and label values all go through it, so equal inputs give equal bytes.

use serde::Serialize;

/// Serializes `value` canonically. Struct fields and map keys come out sorted because the
/// value passes through `serde_json::Value`, whose maps are ordered by key.
pub fn to_canonical_vec<T: Serialize>(value: &T) -> serde_json::Result<Vec<u8>> {
    let value = serde_json::to_value(value)?;
    serde_json::to_vec(&value)
}

/// Like [`to_canonical_vec`], as a string (for label values that hold JSON).
pub fn to_canonical_string<T: Serialize>(value: &T) -> serde_json::Result<String> {
    let value = serde_json::to_value(value)?;
    serde_json::to_string(&value)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Serialize)]
    struct Unsorted {
        zeta: u32,
        alpha: &'static str,
    }

    #[test]
    fn keys_are_sorted_and_whitespace_is_absent() {
        let bytes = to_canonical_vec(&Unsorted {
            zeta: 1,
            alpha: "a b",
        })
        .unwrap();
        assert_eq!(bytes, br#"{"alpha":"a b","zeta":1}"#);
    }
}
