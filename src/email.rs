//! Email addresses: the one normal form the provider and the rate limiter see, and the redacted
//! form that logs carry.

use crate::reply::Rejection;

const MAX_EMAIL: usize = 254;
const MAX_LOCAL: usize = 64;
const MAX_LABEL: usize = 63;

/// Trims, checks and normalises an address: the local part is kept as sent (it may be
/// case-sensitive at the mailbox), the domain is lower-cased. An internationalised domain stays
/// in the form it was sent in (Unicode or `xn--`).
pub fn normalise(raw: &str, field: &str) -> Result<String, Rejection> {
    let addr = raw.trim();
    if addr.is_empty() {
        return Err(Rejection::invalid(format!("The {field} field is empty.")));
    }
    let bad = |rule: &str| Rejection::invalid(format!("The {field} field {rule}."));
    let mut parts = addr.split('@');
    let (Some(local), Some(domain), None) = (parts.next(), parts.next(), parts.next()) else {
        return Err(bad(
            "must be an email address with exactly one @, like jane@example.com",
        ));
    };
    if local.is_empty() {
        return Err(bad("has nothing before the @"));
    }
    if local.len() > MAX_LOCAL {
        return Err(bad(&format!(
            "has more than {MAX_LOCAL} bytes before the @"
        )));
    }
    if local.chars().any(char::is_whitespace) {
        return Err(bad("must not contain spaces"));
    }
    let domain = crate::case::lowercase(domain);
    check_domain(&domain).map_err(bad)?;
    let normal = format!("{local}@{domain}");
    if normal.len() > MAX_EMAIL {
        return Err(bad(&format!("is longer than {MAX_EMAIL} bytes")));
    }
    Ok(normal)
}

/// A DNS name with at least one dot: labels of letters, digits and inner hyphens, at most 63
/// bytes each. Non-ASCII letters are allowed so that Unicode IDNs pass as sent.
fn check_domain(domain: &str) -> Result<(), &'static str> {
    if domain.is_empty() {
        return Err("has no domain after the @");
    }
    let labels: Vec<&str> = domain.split('.').collect();
    if labels.len() < 2 {
        return Err("must have a domain with a dot, like example.com");
    }
    for label in labels {
        if label.is_empty() {
            return Err("has an empty part in its domain (two dots in a row, or a dot at an end)");
        }
        if label.len() > MAX_LABEL {
            return Err("has a domain part longer than 63 bytes");
        }
        if label.starts_with('-') || label.ends_with('-') {
            return Err("has a domain part that starts or ends with a hyphen");
        }
        let ok = label.chars().all(|c| {
            c.is_ascii_alphanumeric()
                || c == '-'
                || (!c.is_ascii() && (c.is_alphanumeric() || is_combining_mark(c)))
        });
        if !ok {
            return Err("has a domain with characters other than letters, digits and hyphens");
        }
    }
    Ok(())
}

/// Combining marks that IDN labels need (Indic viramas, Thai vowel marks and the like) but that
/// Unicode does not class as alphabetic.
fn is_combining_mark(c: char) -> bool {
    matches!(c as u32,
        0x0300..=0x036F | 0x0483..=0x0489 | 0x0591..=0x05BD | 0x064B..=0x065F
        | 0x0900..=0x0903 | 0x093A..=0x094F | 0x0951..=0x0957 | 0x0981..=0x09CD
        | 0x0A01..=0x0ACD | 0x0B01..=0x0BCD | 0x0C00..=0x0CCD | 0x0D00..=0x0D4D
        | 0x0E31 | 0x0E34..=0x0E3A | 0x0E47..=0x0E4E | 0x0EB1..=0x0ECD
        | 0x0F18..=0x0F19 | 0x102B..=0x103E | 0x1AB0..=0x1AFF | 0x1DC0..=0x1DFF
        | 0x200C | 0x200D | 0x20D0..=0x20FF | 0x302A..=0x302F | 0x3099..=0x309A
        | 0xFE20..=0xFE2F)
}

/// `jane@example.com` → `j***@example.com`: enough for an operator to correlate, not enough to
/// identify anyone.
pub fn redact(email: &str) -> String {
    match email.rsplit_once('@') {
        Some((local, domain)) => {
            let first: String = local.chars().take(1).collect();
            format!("{first}***@{domain}")
        }
        None => "***".to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(s: &str) -> String {
        normalise(s, "email").unwrap()
    }

    fn refused(s: &str) -> String {
        let e = normalise(s, "email").unwrap_err();
        assert_eq!(e.status, 400);
        assert!(e.description.contains("email"), "{}", e.description);
        e.description
    }

    #[test]
    fn trims_and_lower_cases_only_the_domain() {
        assert_eq!(ok("  Jane.Doe@Example.COM \t"), "Jane.Doe@example.com");
        assert_eq!(ok("a+tag@sub.example.co.uk"), "a+tag@sub.example.co.uk");
    }

    #[test]
    fn internationalised_domains_pass_in_the_form_sent() {
        assert_eq!(ok("jane@Bücher.example"), "jane@bücher.example");
        assert_eq!(
            ok("jane@XN--BCHER-KVA.example"),
            "jane@xn--bcher-kva.example"
        );
        assert_eq!(ok("user@例え.テスト"), "user@例え.テスト");
        assert_eq!(ok("user@हिन्दी.भारत"), "user@हिन्दी.भारत");
        assert_eq!(ok("user@ไทย.ไทย"), "user@ไทย.ไทย");
    }

    #[test]
    fn needs_exactly_one_at() {
        assert!(refused("jane.example.com").contains("exactly one @"));
        assert!(refused("jane@doe@example.com").contains("exactly one @"));
    }

    #[test]
    fn local_part_rules() {
        assert!(refused("@example.com").contains("before the @"));
        let long = format!("{}@example.com", "a".repeat(65));
        assert!(refused(&long).contains("64"));
        assert_eq!(
            ok(&format!("{}@example.com", "a".repeat(64))),
            format!("{}@example.com", "a".repeat(64))
        );
        refused("ja ne@example.com");
    }

    #[test]
    fn domain_rules() {
        for bad in [
            "jane@",
            "jane@localhost",
            "jane@example..com",
            "jane@.example.com",
            "jane@example.com.",
            "jane@-example.com",
            "jane@example-.com",
            "jane@exa_mple.com",
            "jane@exa mple.com",
            "jane@[127.0.0.1]",
            "jane@example.com/x",
        ] {
            refused(bad);
        }
        let label = "a".repeat(64);
        refused(&format!("jane@{label}.com"));
        assert!(normalise(&format!("jane@{}.com", "a".repeat(63)), "email").is_ok());
        assert_eq!(ok("jane@ex-ample.com"), "jane@ex-ample.com");
        assert_eq!(ok("jane@1.2.3.4"), "jane@1.2.3.4");
    }

    #[test]
    fn whole_address_at_most_254_bytes() {
        let domain = format!(
            "{}.{}.{}.{}",
            "a".repeat(63),
            "b".repeat(63),
            "c".repeat(63),
            "d".repeat(50)
        );
        let addr = format!("{}@{domain}", "x".repeat(20));
        assert!(addr.len() > 254);
        assert!(refused(&addr).contains("254"));
    }

    #[test]
    fn whitespace_only_is_empty() {
        assert!(refused("   ").contains("empty"));
    }

    #[test]
    fn redaction_keeps_first_character_and_domain() {
        assert_eq!(redact("jane@example.com"), "j***@example.com");
        assert_eq!(redact("Ωmega@bücher.example"), "Ω***@bücher.example");
        assert_eq!(redact("nope"), "***");
    }
}
