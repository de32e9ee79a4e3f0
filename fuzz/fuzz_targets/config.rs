//! Configuration bytes → `Settings` (SPEC §8).
//!
//! Checked on every input:
//! - `Settings::from_json` never panics;
//! - a refusal names a real key path (`provider.timeout_ms`, `paths[2]`, …) with a rule, or is
//!   the top-level message (not JSON / not an object); an unknown key is reported under a known
//!   parent, with that parent's known keys and, when there is a suggestion, a known key;
//! - an accepted configuration keeps every value in its documented range: timeout 1–60000 ms
//!   (SPEC §6), body limit 1 byte to `MAX_BODY_LIMIT`, rate windows and slots in range, the
//!   default connection a database connection in the database list's spelling, the default client
//!   among the allowed ones, plain paths, a lower-case header name.
//!
//! The ranges are those of `src/config.rs` (and the README's configuration reference) as of
//! commit 4d13a4c; a deliberate change there must change them here.

#![no_main]

mod common;

use libfuzzer_sys::fuzz_target;
use reset_gate::config::{ConfigError, Settings, MAX_BODY_LIMIT};

/// Every object the configuration has, with its known keys.
const OBJECTS: &[(&str, &[&str])] = &[
    (
        "",
        &[
            "paths",
            "provider",
            "clients",
            "connections",
            "limits",
            "stat_prefix",
        ],
    ),
    (
        "provider",
        &[
            "cluster",
            "authority",
            "path",
            "timeout_ms",
            "client_ip_header",
        ],
    ),
    ("clients", &["default", "allowed"]),
    (
        "connections",
        &["default", "database", "identity_providers"],
    ),
    (
        "limits",
        &[
            "max_body_bytes",
            "per_email",
            "per_ip",
            "on_exceed",
            "slots",
        ],
    ),
    ("limits.per_email", &["requests", "window_seconds"]),
    ("limits.per_ip", &["requests", "window_seconds"]),
];

/// Array keys whose elements are named `key[i]`.
const ARRAYS: &[&str] = &["paths", "clients.allowed", "connections.database"];

fn join(parent: &str, key: &str) -> String {
    if parent.is_empty() {
        key.to_string()
    } else {
        format!("{parent}.{key}")
    }
}

/// True when `key` is a key path the configuration has.
fn is_known_path(key: &str) -> bool {
    if key.starts_with("connections.identity_providers.") {
        // Entries are named by the operator's connection names, whatever they are (an empty or
        // blank name is itself one of the errors reported there).
        return true;
    }
    if let Some((array, index)) = key.strip_suffix(']').and_then(|k| k.rsplit_once('[')) {
        return ARRAYS.contains(&array)
            && !index.is_empty()
            && index.bytes().all(|b| b.is_ascii_digit());
    }
    OBJECTS.iter().any(|(parent, known)| {
        (!parent.is_empty() && *parent == key) || known.iter().any(|k| join(parent, k) == key)
    })
}

fn check_error(e: &ConfigError) {
    let shown = e.to_string();
    assert!(!e.rule.is_empty(), "error without a rule: {e:?}");
    assert!(!shown.contains('\n'), "an error line broken in two: {shown:?}");
    if e.key.is_empty() {
        assert!(
            e.rule.starts_with("is not valid JSON (")
                || e.rule.starts_with("must be a JSON object, got "),
            "a top-level error that is not the top-level message: {shown}"
        );
        assert_eq!(shown, format!("configuration: {}", e.rule));
        return;
    }
    assert_eq!(shown, format!("configuration key `{}`: {}", e.key, e.rule));
    if e.rule.starts_with("is not a known key") {
        // `parent.unknown`, listing the parent's known keys, suggesting one of them at most.
        let parent = OBJECTS.iter().find(|(parent, known)| {
            (parent.is_empty() || e.key.starts_with(&format!("{parent}.")))
                && e.rule
                    .ends_with(&format!("known keys here: {}", known.join(", ")))
        });
        let Some((parent, known)) = parent else {
            panic!("unknown key reported under no known object: {shown}");
        };
        if let Some(rest) = e.rule.split_once("did you mean `").map(|(_, r)| r) {
            let suggested = rest.split_once("`?").map(|(s, _)| s).unwrap_or(rest);
            assert!(
                known.iter().any(|k| join(parent, k) == suggested),
                "suggests `{suggested}`, which is not a known key: {shown}"
            );
        }
    } else {
        assert!(
            is_known_path(&e.key),
            "names `{}`, which is not a key: {shown}",
            e.key
        );
    }
}

fn printable(s: &str) -> bool {
    !s.trim().is_empty() && !s.chars().any(char::is_control)
}

fn check_settings(s: &Settings) {
    let p = &s.provider;
    assert!(
        (1..=60_000).contains(&p.timeout_ms),
        "timeout_ms {}",
        p.timeout_ms
    );
    assert!(printable(&p.cluster) && p.cluster.len() <= 256);
    assert!(printable(&p.authority) && p.authority.len() <= 256);
    assert!(p.path.starts_with('/'), "provider.path {:?}", p.path);
    if let Some(h) = &p.client_ip_header {
        assert!(
            !h.is_empty()
                && h.bytes()
                    .all(|b| b.is_ascii_graphic() && !b.is_ascii_uppercase())
        );
    }

    let l = &s.limits;
    assert!(
        (1..=MAX_BODY_LIMIT).contains(&(l.max_body_bytes as u64)),
        "max_body_bytes {}",
        l.max_body_bytes
    );
    assert!((64..=1_048_576).contains(&l.slots), "slots {}", l.slots);
    for w in [&l.per_email, &l.per_ip].into_iter().flatten() {
        assert!(
            (1..=1_000_000_000).contains(&w.requests),
            "requests {}",
            w.requests
        );
        assert!(
            (1..=31_536_000).contains(&w.window_seconds),
            "window_seconds {}",
            w.window_seconds
        );
    }

    // The default connection is a database connection, in the database list's spelling:
    // resolving it forwards it unchanged.
    let default = s.connections.default();
    assert!(printable(default));
    match s.connections.resolve(Some(default)) {
        Ok(resolved) => assert_eq!(
            resolved, default,
            "default connection {default:?} resolves to {resolved:?}"
        ),
        Err(r) => panic!(
            "default connection {default:?} is refused: {}",
            r.description
        ),
    }
    assert_eq!(s.connections.resolve(None).ok(), Some(default));

    if let (Some(d), Some(a)) = (&s.clients.default, &s.clients.allowed) {
        assert!(a.contains(d), "default client {d:?} not in {a:?}");
    }
    if let Some(a) = &s.clients.allowed {
        assert!(!a.is_empty());
    }

    assert!(!s.paths.is_empty());
    for path in &s.paths {
        assert!(
            path.starts_with('/') && !path.contains('?') && !path.contains('#'),
            "path {path:?}"
        );
        assert!(s.is_reset_path(path));
    }
    assert!(
        !s.stat_prefix.is_empty()
            && !s.stat_prefix.starts_with('.')
            && !s.stat_prefix.ends_with('.')
    );
}

fuzz_target!(|data: &[u8]| {
    match Settings::from_json(data) {
        Ok(s) => check_settings(&s),
        Err(e) => check_error(&e),
    }
});
