//! Body → fields → the request the provider receives.
//!
//! Input: the first byte picks the encoding (even: JSON, odd: form; the seeds use `j` and `u`),
//! the rest is the body. Checked on every input:
//! - `body::parse` never panics, and a refusal is a 400 `invalid_request`;
//! - JSON bodies agree with serde_json used as a reference parser (accepted exactly when serde_json
//!   reads one object without duplicate keys whose used fields are valid strings, and with the
//!   same field values);
//! - the fields survive a round trip through a canonical JSON and form encoding;
//! - what `ResetRequest::from_fields` accepts serialises to JSON with exactly the SPEC §4 keys in
//!   order, each value taken from the field SPEC §4 names, an email with one `@` and a lower-case
//!   domain, a configured client and database connection, and nothing from the legacy password.
//!
//! The scanner must stay linear in the body's size: run with `-timeout` so a superlinear case
//! shows up as a timeout rather than as a slow fuzzer.

#![no_main]

mod common;

use std::fmt;
use std::sync::OnceLock;

use common::{fold, is_lower};
use libfuzzer_sys::fuzz_target;
use reset_gate::body::{parse, BodyKind, Fields};
use reset_gate::config::Settings;
use reset_gate::reply::Rejection;
use reset_gate::request::ResetRequest;
use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};

const DEFAULT_CLIENT: &str = "CLIENT_ID";
const ALLOWED_CLIENTS: &[&str] = &[
    DEFAULT_CLIENT,
    "aBcDeFgHiJkLmNoPqRsTuVwXyZ012345",
    "lock-ios",
];
const DATABASE: &[&str] = &["Username-Password-Authentication", "Staff-DB"];

/// Built once: a default client with an allowed list, two database connections and an identity
/// provider, so every branch of the client and connection policies is reachable.
fn settings() -> &'static Settings {
    static SETTINGS: OnceLock<Settings> = OnceLock::new();
    SETTINGS.get_or_init(|| {
        let config = r#"{
            "provider": {"cluster": "auth0", "authority": "example.eu.auth0.com"},
            "clients": {"default": "CLIENT_ID",
                        "allowed": ["CLIENT_ID", "aBcDeFgHiJkLmNoPqRsTuVwXyZ012345", "lock-ios"]},
            "connections": {"default": "Username-Password-Authentication",
                            "database": ["Username-Password-Authentication", "Staff-DB"],
                            "identity_providers": {"acme-saml": "Acme single sign-on"}}
        }"#;
        match Settings::from_json(config.as_bytes()) {
            Ok(s) => s,
            Err(e) => panic!("the fuzz target's own configuration is refused: {e}"),
        }
    })
}

const USED: &[&str] = &[
    "client_id",
    "email",
    "username",
    "connection",
    "organization",
    "captcha",
    "state",
];

fn field<'a>(f: &'a Fields, key: &str) -> &'a Option<String> {
    match key {
        "client_id" => &f.client_id,
        "email" => &f.email,
        "username" => &f.username,
        "connection" => &f.connection,
        "organization" => &f.organization,
        "captcha" => &f.captcha,
        "state" => &f.state,
        _ => unreachable!("{key} is not a used field"),
    }
}

fn field_mut<'a>(f: &'a mut Fields, key: &str) -> &'a mut Option<String> {
    match key {
        "client_id" => &mut f.client_id,
        "email" => &mut f.email,
        "username" => &mut f.username,
        "connection" => &mut f.connection,
        "organization" => &mut f.organization,
        "captcha" => &mut f.captcha,
        "state" => &mut f.state,
        _ => unreachable!("{key} is not a used field"),
    }
}

/// SPEC §3 field limits in bytes, on the value as sent (`captcha` tokens from auth0.js run to a
/// few kilobytes).
fn limit(key: &str) -> usize {
    match key {
        "email" | "username" => 254,
        "captcha" => 4096,
        _ => 128,
    }
}

// ---------------------------------------------------------------------------------------------
// serde_json as the reference parser: the top-level members in order, duplicates kept, every
// string decoded (so lone surrogates are refused anywhere, as the filter's scanner does).

enum Member {
    Str(String),
    Other,
}

struct Members(Vec<(String, Member)>);

impl<'de> Deserialize<'de> for Members {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Members;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut m: A) -> Result<Members, A::Error> {
                let mut out = Vec::new();
                while let Some(k) = m.next_key::<String>()? {
                    out.push((k, m.next_value::<Member>()?));
                }
                Ok(Members(out))
            }
        }
        d.deserialize_map(V)
    }
}

impl<'de> Deserialize<'de> for Member {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Member;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("any JSON value")
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<Member, E> {
                Ok(Member::Str(s.to_string()))
            }
            fn visit_bool<E: de::Error>(self, _: bool) -> Result<Member, E> {
                Ok(Member::Other)
            }
            fn visit_i64<E: de::Error>(self, _: i64) -> Result<Member, E> {
                Ok(Member::Other)
            }
            fn visit_u64<E: de::Error>(self, _: u64) -> Result<Member, E> {
                Ok(Member::Other)
            }
            fn visit_f64<E: de::Error>(self, _: f64) -> Result<Member, E> {
                Ok(Member::Other)
            }
            fn visit_unit<E: de::Error>(self) -> Result<Member, E> {
                Ok(Member::Other)
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut s: A) -> Result<Member, A::Error> {
                while s.next_element::<Member>()?.is_some() {}
                Ok(Member::Other)
            }
            fn visit_map<A: MapAccess<'de>>(self, mut m: A) -> Result<Member, A::Error> {
                while m.next_entry::<String, Member>()?.is_some() {}
                Ok(Member::Other)
            }
        }
        d.deserialize_any(V)
    }
}

/// What the filter must make of a JSON body, according to serde_json: `Some(Ok(fields))`,
/// `Some(Err(why))` for a refusal, `None` where serde_json cannot judge (it stops at 128 levels
/// of nesting and at numbers beyond f64, which the filter skips as it should).
fn json_reference(body: &[u8]) -> Option<Result<Fields, String>> {
    let members = match serde_json::from_slice::<Members>(body) {
        Ok(m) => m.0,
        Err(e) => {
            let msg = e.to_string();
            if msg.starts_with("recursion limit exceeded") || msg.starts_with("number out of range")
            {
                return None;
            }
            return Some(Err(format!("serde_json: {msg}")));
        }
    };
    let mut keys: Vec<&str> = members.iter().map(|(k, _)| k.as_str()).collect();
    keys.sort_unstable();
    if let Some(w) = keys.windows(2).find(|w| w[0] == w[1]) {
        return Some(Err(format!("duplicate key {:?}", w[0])));
    }
    let mut fields = Fields::default();
    for (key, value) in &members {
        if !USED.contains(&key.as_str()) {
            continue;
        }
        let Member::Str(s) = value else {
            return Some(Err(format!("{key} is not a string")));
        };
        // Surrounding whitespace (a tab, a newline) of the fields normalisation trims is not a
        // control character the provider would see.
        let checked = match key.as_str() {
            "email" | "username" | "connection" => s.trim(),
            _ => s.as_str(),
        };
        if checked.chars().any(char::is_control) {
            return Some(Err(format!("{key} has a control character")));
        }
        if s.len() > limit(key) {
            return Some(Err(format!("{key} is too long")));
        }
        *field_mut(&mut fields, key) = Some(s.clone());
    }
    Some(Ok(fields))
}

// ---------------------------------------------------------------------------------------------
// Canonical encodings of a set of fields, for the round trip.

fn to_json_body(f: &Fields) -> Vec<u8> {
    let mut map = serde_json::Map::new();
    for key in USED {
        if let Some(v) = field(f, key) {
            map.insert(key.to_string(), serde_json::Value::String(v.clone()));
        }
    }
    serde_json::to_vec(&serde_json::Value::Object(map)).unwrap_or_default()
}

fn to_form_body(f: &Fields) -> Vec<u8> {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    let mut out = Vec::new();
    for key in USED {
        if let Some(v) = field(f, key) {
            if !out.is_empty() {
                out.push(b'&');
            }
            out.extend_from_slice(key.as_bytes());
            out.push(b'=');
            for &b in v.as_bytes() {
                if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                    out.push(b);
                } else if b == b' ' {
                    out.push(b'+');
                } else {
                    out.extend_from_slice(&[
                        b'%',
                        HEX[usize::from(b >> 4)],
                        HEX[usize::from(b & 15)],
                    ]);
                }
            }
        }
    }
    out
}

// ---------------------------------------------------------------------------------------------
// The provider's body.

/// The provider's body read back with serde_json: members in order, every value a string.
struct Pairs(Vec<(String, String)>);

impl<'de> Deserialize<'de> for Pairs {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Pairs;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("an object of strings")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut m: A) -> Result<Pairs, A::Error> {
                let mut out = Vec::new();
                while let Some(kv) = m.next_entry::<String, String>()? {
                    out.push(kv);
                }
                Ok(Pairs(out))
            }
        }
        d.deserialize_map(V)
    }
}

fn check_forwarded(fields: &Fields, req: &ResetRequest) {
    let out = req.to_json();
    let text = match std::str::from_utf8(&out) {
        Ok(t) => t,
        Err(e) => panic!("provider body is not UTF-8 ({e}): {out:?}"),
    };
    let pairs = match serde_json::from_slice::<Pairs>(&out) {
        Ok(p) => p.0,
        Err(e) => panic!("provider body is not a JSON object of strings ({e}): {text}"),
    };

    // Exactly the SPEC §4 keys, in order, each holding the request's value.
    let mut expected: Vec<(&str, &str)> = vec![
        ("client_id", &req.client_id),
        ("email", &req.email),
        ("connection", &req.connection),
    ];
    for (k, v) in [
        ("organization", &req.organization),
        ("captcha", &req.captcha),
        ("state", &req.state),
    ] {
        if let Some(v) = v {
            expected.push((k, v));
        }
    }
    let got: Vec<(&str, &str)> = pairs
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    assert_eq!(got, expected, "provider body {text}");

    // Email: SPEC §4.
    let email = &req.email;
    assert_eq!(email.matches('@').count(), 1, "email {email:?} needs one @");
    assert!(email.len() <= 254, "email {email:?} is over 254 bytes");
    let (local, domain) = email.split_once('@').unwrap_or_default();
    assert!(
        !local.is_empty() && local.len() <= 64,
        "local part of {email:?}"
    );
    assert!(
        is_lower(domain),
        "domain of {email:?} is not lower-case"
    );
    let sent = fields.email.as_ref().or(fields.username.as_ref());
    let sent = sent.map(|s| s.trim()).unwrap_or_default();
    let (sent_local, sent_domain) = sent.split_once('@').unwrap_or_default();
    assert_eq!(
        sent_local, local,
        "local part not kept as sent ({sent:?} → {email:?})"
    );
    assert_eq!(
        fold(sent_domain),
        fold(domain),
        "another domain ({sent:?} → {email:?})"
    );

    // Client: the one sent, else the default; always an allowed one.
    let client = fields
        .client_id
        .as_deref()
        .filter(|c| !c.is_empty())
        .unwrap_or(DEFAULT_CLIENT);
    assert_eq!(req.client_id, client);
    assert!(
        ALLOWED_CLIENTS.contains(&req.client_id.as_str()),
        "client {:?}",
        req.client_id
    );

    // Connection: a configured database connection in its configured spelling.
    assert!(
        DATABASE.contains(&req.connection.as_str()),
        "connection {:?}",
        req.connection
    );
    match fields
        .connection
        .as_deref()
        .map(str::trim)
        .filter(|c| !c.is_empty())
    {
        Some(c) => assert_eq!(fold(c), fold(&req.connection), "connection {c:?}"),
        None => assert_eq!(req.connection, DATABASE[0]),
    }

    // Pass-through fields are passed through unchanged.
    let organization = fields.organization.clone().filter(|o| !o.is_empty());
    assert_eq!(req.organization, organization);
    if let Some(o) = &req.organization {
        assert!(o
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'));
    }
    assert_eq!(req.captcha, fields.captcha);
    assert_eq!(req.state, fields.state);

    // The legacy password: never a key (checked above), and the word can only appear where the
    // client itself put it into a forwarded field (an address like password@example.com, a state).
    // A literal "never contains `password`" would be false for such legitimate requests.
    if text.contains("password") {
        assert!(
            expected.iter().any(|(_, v)| v.contains("password")),
            "`password` in {text} comes from no forwarded field"
        );
    }
}

fn check_refusal(r: &Rejection, context: &str) {
    assert!(
        matches!(
            (r.status, r.code),
            (400, "invalid_request") | (400, "bad.connection") | (403, "unauthorized_client")
        ),
        "{context}: unexpected refusal {} {}",
        r.status,
        r.code
    );
    assert!(
        !r.description.is_empty(),
        "{context}: refusal without a description"
    );
}

fuzz_target!(|data: &[u8]| {
    let Some((&selector, body)) = data.split_first() else {
        return;
    };
    let kind = if selector % 2 == 0 {
        BodyKind::Json
    } else {
        BodyKind::Form
    };

    let parsed = parse(kind, body);
    if let Err(r) = &parsed {
        assert_eq!(
            (r.status, r.code),
            (400, "invalid_request"),
            "parse refusal"
        );
        assert!(!r.description.is_empty());
    }

    if kind == BodyKind::Json {
        match (json_reference(body), &parsed) {
            (None, _) => {}
            (Some(Ok(want)), Ok(got)) => assert_eq!(got, &want, "fields differ from serde_json's"),
            (Some(Ok(want)), Err(r)) => {
                panic!(
                    "refused ({}) a body serde_json reads as {want:?}",
                    r.description
                )
            }
            (Some(Err(why)), Ok(got)) => panic!("accepted as {got:?} a body that is bad: {why}"),
            (Some(Err(_)), Err(_)) => {}
        }
    }

    let Ok(fields) = parsed else {
        return;
    };

    // The fields must survive a round trip through both encodings.
    for (k, encoded) in [
        (BodyKind::Json, to_json_body(&fields)),
        (BodyKind::Form, to_form_body(&fields)),
    ] {
        match parse(k, &encoded) {
            Ok(again) => assert_eq!(again, fields, "{k:?} round trip of {encoded:?}"),
            Err(r) => panic!("{k:?} round trip of {encoded:?} refused: {}", r.description),
        }
    }

    match ResetRequest::from_fields(&fields, settings()) {
        Ok(req) => check_forwarded(&fields, &req),
        Err(r) => check_refusal(&r, "from_fields"),
    }
});
