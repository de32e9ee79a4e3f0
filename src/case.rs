//! Lower-casing for domain and connection names, without the standard library's full Unicode
//! case tables (about 19 KB of the filter's wasm).
//!
//! It covers the scripts with case that occur in domain names and connection names: ASCII,
//! Latin-1 and Latin Extended-A, Greek, Cyrillic, Armenian and fullwidth Latin. Characters of
//! other cased scripts are left as they are; the unit tests compare it with `char::to_lowercase`
//! over the covered blocks.

/// The lower-case form of `c`, where its block is covered.
pub fn lower(c: char) -> char {
    let u = c as u32;
    let mapped = match u {
        0x41..=0x5A | 0xC0..=0xD6 | 0xD8..=0xDE => u + 0x20,
        // Latin Extended-A: pairs start on even code points, then shift to odd ones.
        0x100..=0x12F | 0x132..=0x137 | 0x14A..=0x177 if u % 2 == 0 => u + 1,
        0x139..=0x148 | 0x179..=0x17E if u % 2 == 1 => u + 1,
        0x130 => 0x69,
        0x178 => 0xFF,
        // Greek.
        0x386 => 0x3AC,
        0x388..=0x38A => u + 37,
        0x38C => 0x3CC,
        0x38E..=0x38F => u + 63,
        0x391..=0x3A1 | 0x3A3..=0x3AB => u + 0x20,
        0x3D8..=0x3EF if u % 2 == 0 => u + 1,
        // Cyrillic.
        0x400..=0x40F => u + 0x50,
        0x410..=0x42F => u + 0x20,
        0x460..=0x481 | 0x48A..=0x4BF | 0x4D0..=0x52F if u % 2 == 0 => u + 1,
        0x4C0 => 0x4CF,
        0x4C1..=0x4CE if u % 2 == 1 => u + 1,
        // Armenian.
        0x531..=0x556 => u + 0x30,
        // Fullwidth Latin.
        0xFF21..=0xFF3A => u + 0x20,
        _ => u,
    };
    char::from_u32(mapped).unwrap_or(c)
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
    fn agrees_with_the_standard_library_on_the_covered_blocks() {
        let blocks = [
            0x0..=0x24F_u32,
            0x370..=0x3FF,
            0x400..=0x52F,
            0x530..=0x58F,
            0xFF00..=0xFF5F,
        ];
        for block in blocks {
            for u in block {
                let Some(c) = char::from_u32(u) else { continue };
                let mut std_lower = c.to_lowercase();
                let expected = match (std_lower.next(), std_lower.next()) {
                    (Some(l), None) => l,
                    // Multi-character lower forms (U+0130) have no one-character answer.
                    _ => continue,
                };
                // Outside the ranges handled on purpose, leaving a character alone is allowed.
                let got = lower(c);
                assert!(
                    got == expected || got == c,
                    "U+{u:04X}: got U+{:04X}, std U+{:04X}",
                    got as u32,
                    expected as u32
                );
                if (0x0..=0x17F).contains(&u)
                    || (0x391..=0x3AB).contains(&u)
                    || (0x400..=0x42F).contains(&u)
                    || (0x531..=0x556).contains(&u)
                    || (0xFF21..=0xFF3A).contains(&u)
                {
                    assert_eq!(got, expected, "U+{u:04X} must be lowered");
                }
            }
        }
    }

    #[test]
    fn lowers_typical_names() {
        assert_eq!(lowercase("Bücher.EXAMPLE"), "bücher.example");
        assert_eq!(lowercase("ПРИМЕР.РФ"), "пример.рф");
        assert_eq!(lowercase("ΕΛΛΆΔΑ.gr"), "ελλάδα.gr");
        assert_eq!(lowercase("例え.テスト"), "例え.テスト");
        assert!(eq_ignore_case("Staff-DB", "staff-db"));
        assert!(eq_ignore_case("ÉQUIPE", "équipe"));
        assert!(!eq_ignore_case("a", "b"));
    }
}
