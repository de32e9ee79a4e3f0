//! Lower-casing for domains, connection names and rate-limit keys.
//!
//! The table is generated at build time (`build.rs`) from the standard library's own Unicode data,
//! so the result is exactly the first character of `char::to_lowercase` for every character, but
//! the wasm carries a few kilobytes of runs instead of the standard library's case tables and
//! their code (about 19 KB).

include!(concat!(env!("OUT_DIR"), "/lower_table.rs"));

/// The lower-case form of `c` (the first character of its full lower-case mapping).
pub fn lower(c: char) -> char {
    let u = c as u32;
    if u < 0x80 {
        return c.to_ascii_lowercase();
    }
    // The last run starting at or before `u`.
    let i = RUNS.partition_point(|&(first, _, _, _)| first <= u);
    let Some(&(first, count, offset, stride)) = i.checked_sub(1).and_then(|i| RUNS.get(i)) else {
        return c;
    };
    let step = u - first;
    let stride = u32::from(stride);
    if step % stride != 0 || step / stride >= u32::from(count) {
        return c;
    }
    u.checked_add_signed(offset)
        .and_then(char::from_u32)
        .unwrap_or(c)
}

pub fn lowercase(s: &str) -> String {
    if s.is_ascii() {
        return s.to_ascii_lowercase();
    }
    s.chars().map(lower).collect()
}

/// Case-insensitive equality under `lower`.
pub fn eq_ignore_case(a: &str, b: &str) -> bool {
    if a.is_ascii() && b.is_ascii() {
        return a.eq_ignore_ascii_case(b);
    }
    a.chars().map(lower).eq(b.chars().map(lower))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn agrees_with_the_standard_library_for_every_character() {
        for c in (0..=0x10FFFF_u32).filter_map(char::from_u32) {
            let expected = c.to_lowercase().next().unwrap_or(c);
            assert_eq!(lower(c), expected, "U+{:04X}", c as u32);
        }
    }

    #[test]
    fn lowers_typical_names() {
        assert_eq!(lowercase("Bücher.EXAMPLE"), "bücher.example");
        assert_eq!(lowercase("ПРИМЕР.РФ"), "пример.рф");
        assert_eq!(lowercase("ΕΛΛΆΔΑ.gr"), "ελλάδα.gr");
        assert_eq!(lowercase("ǼX.example"), "ǽx.example");
        assert_eq!(lowercase("ẠB.vn"), "ạb.vn");
        assert_eq!(lowercase("Ⴀ.ge"), "ⴀ.ge");
        assert_eq!(lowercase("例え.テスト"), "例え.テスト");
        assert!(eq_ignore_case("Staff-DB", "staff-db"));
        assert!(eq_ignore_case("ÉQUIPE", "équipe"));
        assert!(!eq_ignore_case("a", "b"));
    }
}
