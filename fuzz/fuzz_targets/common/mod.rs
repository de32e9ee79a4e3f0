//! Helpers shared by the fuzz targets: case comparison as SPEC §4 means it.

#![allow(dead_code)] // Each target uses a part.

/// Unicode lower-casing, one character at a time (so a final `Σ` is `σ`, as in a domain name).
/// `İ` (U+0130) counts as `i`: the filter lowers it to the `i` users mean rather than Unicode's
/// `i` + combining dot.
pub fn fold(s: &str) -> String {
    s.chars()
        .flat_map(|c| if c == 'İ' { 'i' } else { c }.to_lowercase())
        .collect()
}

/// True when no character of `s` has a different lower-case form.
pub fn is_lower(s: &str) -> bool {
    s.chars().all(|c| c.to_lowercase().eq([c]))
}
