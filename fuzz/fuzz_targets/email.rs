//! Email addresses (SPEC §4) and their redacted log form (SPEC §9).
//!
//! Checked on every UTF-8 input: `email::normalise` and `email::redact` never panic; an accepted
//! address is at most 254 bytes with exactly one `@`, a local part kept as sent (trimmed) and a
//! lower-case domain, and normalising it again changes nothing; a refusal names the field; the
//! redacted form never carries more than the first character of the local part.

#![no_main]

mod common;

use common::{fold, is_lower};
use libfuzzer_sys::fuzz_target;
use reset_gate::email::{normalise, redact};

fuzz_target!(|data: &[u8]| {
    let Ok(raw) = std::str::from_utf8(data) else {
        return;
    };
    let redacted = redact(raw);
    assert!(redacted.contains("***"), "redact({raw:?}) = {redacted:?}");
    if let Some((local, domain)) = raw.rsplit_once('@') {
        let first: String = local.chars().take(1).collect();
        assert_eq!(redacted, format!("{first}***@{domain}"));
    }

    match normalise(raw, "email") {
        Ok(email) => {
            assert!(email.len() <= 254, "{email:?} is over 254 bytes");
            assert_eq!(email.matches('@').count(), 1, "{email:?}");
            let (local, domain) = email.split_once('@').unwrap_or_default();
            assert!(!local.is_empty() && local.len() <= 64, "{email:?}");
            assert_eq!(Some(local), raw.trim().split_once('@').map(|(l, _)| l));
            let sent_domain = raw
                .trim()
                .split_once('@')
                .map(|(_, d)| d)
                .unwrap_or_default();
            assert_eq!(
                fold(domain),
                fold(sent_domain),
                "{raw:?} → {email:?}: another domain"
            );
            assert!(
                is_lower(domain),
                "domain of {email:?} is not lower-case"
            );
            assert!(domain.contains('.'), "{email:?}");
            assert_eq!(
                normalise(&email, "email").ok().as_deref(),
                Some(email.as_str()),
                "not idempotent"
            );
            let r = redact(&email);
            assert!(
                r.ends_with(&format!("***@{domain}")),
                "redact({email:?}) = {r:?}"
            );
            assert!(r.chars().count() <= domain.chars().count() + 5);
        }
        Err(r) => {
            assert_eq!((r.status, r.code), (400, "invalid_request"));
            assert!(
                r.description.contains("The email field"),
                "{}",
                r.description
            );
        }
    }
});
