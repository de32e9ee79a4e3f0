//! The filter's configuration: parsed from the JSON in Envoy's `PluginConfig.configuration`,
//! checked key by key, and compiled into `Settings`, the ready-to-use form the request path reads.
//!
//! The JSON is walked by hand rather than through `#[derive(Deserialize)]` so that every error can
//! name the full key path (`provider.timeout_ms`) and the rule, and an unknown key can name the
//! nearest known one: the operator reads these lines in Envoy's log during a rollout.

use serde_json::{Map, Value};
use std::fmt;

use crate::connection::ConnectionPolicy;
use crate::limit::Window;

pub const DEFAULT_PATH: &str = "/dbconnections/change_password";
pub const DEFAULT_CONNECTION: &str = "Username-Password-Authentication";
pub const DEFAULT_TIMEOUT_MS: u32 = 5000;
pub const DEFAULT_MAX_BODY_BYTES: usize = 8192;
pub const DEFAULT_RATE_SLOTS: u32 = 8192;
pub const DEFAULT_STAT_PREFIX: &str = "reset_gate";
/// The largest `limits.max_body_bytes`: Envoy buffers the body before the filter reads it, and no
/// reset request needs more than a few kilobytes.
pub const MAX_BODY_LIMIT: u64 = 1024 * 1024;

/// A configuration error: which key, and which rule it broke.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    pub key: String,
    pub rule: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.key.is_empty() {
            write!(f, "configuration: {}", self.rule)
        } else {
            write!(f, "configuration key `{}`: {}", self.key, self.rule)
        }
    }
}

impl std::error::Error for ConfigError {}

fn err(key: &str, rule: impl Into<String>) -> ConfigError {
    ConfigError {
        key: key.to_string(),
        rule: rule.into(),
    }
}

/// Where and how the reset email is requested.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Provider {
    pub cluster: String,
    pub authority: String,
    pub path: String,
    pub timeout_ms: u32,
    pub client_ip_header: Option<String>,
}

/// Which applications may ask for a reset.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ClientPolicy {
    pub default: Option<String>,
    pub allowed: Option<Vec<String>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnExceed {
    /// 429 with `Retry-After`.
    Reject,
    /// The provider's usual success reply, without calling the provider.
    Silent,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    pub max_body_bytes: usize,
    pub per_email: Option<Window>,
    pub per_ip: Option<Window>,
    pub on_exceed: OnExceed,
    /// Slots in each shared rate-limit table (bounds memory whatever the number of keys).
    pub slots: u32,
}

/// The compiled configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    pub paths: Vec<String>,
    /// Prefix of the filter's counters in Envoy's stats (Envoy adds `wasmcustom.` before it).
    pub stat_prefix: String,
    pub provider: Provider,
    pub clients: ClientPolicy,
    pub connections: ConnectionPolicy,
    pub limits: Limits,
}

impl Settings {
    /// Parses and checks a configuration document. An empty document is an error: the provider's
    /// cluster and authority have no sensible default.
    pub fn from_json(bytes: &[u8]) -> Result<Settings, ConfigError> {
        let root: Value = serde_json::from_slice(bytes)
            .map_err(|e| err("", format!("is not valid JSON ({e})")))?;
        let root = object(&root, "")?;
        known_keys(
            root,
            "",
            &[
                "paths",
                "provider",
                "clients",
                "connections",
                "limits",
                "stat_prefix",
            ],
        )?;
        let stat_prefix = match root.get("stat_prefix") {
            None => DEFAULT_STAT_PREFIX.to_string(),
            Some(v) => {
                let p = name(v, "stat_prefix", 64)?;
                let ok = p.bytes().all(|b| {
                    b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'.'
                }) && !p.starts_with('.')
                    && !p.ends_with('.');
                if !ok {
                    return Err(err(
                        "stat_prefix",
                        "must be lower-case letters, digits, `_` and inner dots, like `reset_gate.eu`",
                    ));
                }
                p
            }
        };

        let paths = match root.get("paths") {
            None => vec![DEFAULT_PATH.to_string()],
            Some(v) => paths(v)?,
        };
        let provider = match root.get("provider") {
            None => {
                return Err(err(
                    "provider",
                    "is required (with `cluster` and `authority`)",
                ))
            }
            Some(v) => provider(v)?,
        };
        let clients = match root.get("clients") {
            None => ClientPolicy::default(),
            Some(v) => clients(v)?,
        };
        let connections = match root.get("connections") {
            None => ConnectionPolicy::new(
                DEFAULT_CONNECTION.to_string(),
                vec![DEFAULT_CONNECTION.to_string()],
                Vec::new(),
            ),
            Some(v) => connections(v)?,
        };
        let limits = match root.get("limits") {
            None => Limits {
                max_body_bytes: DEFAULT_MAX_BODY_BYTES,
                per_email: None,
                per_ip: None,
                on_exceed: OnExceed::Reject,
                slots: DEFAULT_RATE_SLOTS,
            },
            Some(v) => limits(v)?,
        };
        Ok(Settings {
            paths,
            stat_prefix,
            provider,
            clients,
            connections,
            limits,
        })
    }

    /// True when `path` (the request's `:path`, query included) is a reset path.
    pub fn is_reset_path(&self, path: &str) -> bool {
        let without_query = match path.find('?') {
            Some(i) => &path[..i],
            None => path,
        };
        self.paths.iter().any(|p| p == without_query)
    }
}

fn describe(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

fn join(parent: &str, key: &str) -> String {
    let key = segment(key);
    if parent.is_empty() {
        key
    } else {
        format!("{parent}.{key}")
    }
}

/// A key as it appears in a key path: plain names as they are, anything else (empty, spaces,
/// dots, control characters) as a JSON string, so that an error line names it unambiguously and
/// an operator-supplied key can never break the log line.
fn segment(key: &str) -> String {
    let plain = !key.is_empty()
        && key
            .chars()
            .all(|c| c.is_alphanumeric() || matches!(c, '_' | '-'));
    if plain {
        key.to_string()
    } else {
        json_string(key)
    }
}

/// An operator-supplied string quoted and escaped for an error line.
fn json_string(s: &str) -> String {
    let mut out = Vec::new();
    crate::reply::push_json_string(&mut out, s);
    String::from_utf8_lossy(&out).into_owned()
}

fn object<'a>(v: &'a Value, key: &str) -> Result<&'a Map<String, Value>, ConfigError> {
    match v {
        Value::Object(m) => Ok(m),
        other => Err(err(
            key,
            format!("must be a JSON object, got {}", describe(other)),
        )),
    }
}

/// Refuses keys the filter does not know, naming the closest known key: a typo must not silently
/// turn a limit off.
fn known_keys(map: &Map<String, Value>, parent: &str, known: &[&str]) -> Result<(), ConfigError> {
    for key in map.keys() {
        if !known.contains(&key.as_str()) {
            let rule = match nearest(key, known) {
                Some(s) => format!(
                    "is not a known key (did you mean `{}`?); known keys here: {}",
                    join(parent, s),
                    known.join(", ")
                ),
                None => format!("is not a known key; known keys here: {}", known.join(", ")),
            };
            return Err(err(&join(parent, key), rule));
        }
    }
    Ok(())
}

/// The known key with the smallest edit distance, when it is close enough to be a likely typo
/// (or shares a prefix, like `timeout` for `timeout_ms`).
pub fn nearest<'a>(key: &str, known: &[&'a str]) -> Option<&'a str> {
    let lower = key.to_ascii_lowercase();
    let mut best: Option<(usize, &'a str)> = None;
    for &k in known {
        let d = edit_distance(&lower, k);
        let close = d <= (k.len().max(lower.len()) / 2).max(2)
            || (lower.len() >= 3 && (k.starts_with(&lower) || lower.starts_with(k)));
        if close && best.is_none_or(|(bd, _)| d < bd) {
            best = Some((d, k));
        }
    }
    best.map(|(_, k)| k)
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    let mut cur = vec![0; b.len() + 1];
    for (i, ca) in a.chars().enumerate() {
        cur[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let cost = usize::from(ca != *cb);
            cur[j + 1] = (prev[j] + cost).min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        std::mem::swap(&mut prev, &mut cur);
    }
    prev[b.len()]
}

fn string<'a>(v: &'a Value, key: &str) -> Result<&'a str, ConfigError> {
    match v {
        Value::String(s) => Ok(s),
        other => Err(err(
            key,
            format!("must be a string, got {}", describe(other)),
        )),
    }
}

/// A non-empty string of printable characters, at most `max` bytes.
fn name(v: &Value, key: &str, max: usize) -> Result<String, ConfigError> {
    let s = string(v, key)?;
    if s.trim().is_empty() {
        return Err(err(key, "must not be empty"));
    }
    if s.len() > max {
        return Err(err(key, format!("must be at most {max} bytes")));
    }
    if s.chars().any(char::is_control) {
        return Err(err(key, "must not contain control characters"));
    }
    Ok(s.to_string())
}

fn integer(v: &Value, key: &str, min: u64, max: u64) -> Result<u64, ConfigError> {
    let rule = format!("must be a whole number from {min} to {max}");
    match v {
        Value::Number(n) => match n.as_u64() {
            Some(x) if (min..=max).contains(&x) => Ok(x),
            _ => Err(err(key, format!("{rule}, got {n}"))),
        },
        other => Err(err(key, format!("{rule}, got {}", describe(other)))),
    }
}

fn string_list(v: &Value, key: &str, max_len: usize) -> Result<Vec<String>, ConfigError> {
    let items = match v {
        Value::Array(a) => a,
        other => {
            return Err(err(
                key,
                format!("must be an array of strings, got {}", describe(other)),
            ))
        }
    };
    if items.is_empty() {
        return Err(err(key, "must not be empty"));
    }
    items
        .iter()
        .enumerate()
        .map(|(i, item)| name(item, &format!("{key}[{i}]"), max_len))
        .collect()
}

fn paths(v: &Value) -> Result<Vec<String>, ConfigError> {
    let list = string_list(v, "paths", 1024)?;
    for (i, p) in list.iter().enumerate() {
        if !p.starts_with('/') || p.contains('?') || p.contains('#') || p.contains(' ') {
            return Err(err(
                &format!("paths[{i}]"),
                "must be a URL path starting with `/`, without query string or spaces",
            ));
        }
    }
    Ok(list)
}

/// An HTTP header name, stored lower-case as Envoy stores header names.
fn header_name(v: &Value, key: &str) -> Result<String, ConfigError> {
    let s = name(v, key, 128)?.to_ascii_lowercase();
    let ok = s
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"-_.!#$%&'*+^`|~".contains(&b));
    if !ok || s.starts_with(':') {
        return Err(err(
            key,
            "must be an HTTP header name (letters, digits, `-`)",
        ));
    }
    if matches!(
        s.as_str(),
        "host" | "content-type" | "content-length" | "user-agent" | "auth0-client" | "x-request-id"
    ) {
        return Err(err(
            key,
            format!("must not be `{s}`: the filter sets that header itself"),
        ));
    }
    Ok(s)
}

fn provider(v: &Value) -> Result<Provider, ConfigError> {
    let m = object(v, "provider")?;
    known_keys(
        m,
        "provider",
        &[
            "cluster",
            "authority",
            "path",
            "timeout_ms",
            "client_ip_header",
        ],
    )?;
    let cluster = match m.get("cluster") {
        Some(v) => name(v, "provider.cluster", 256)?,
        None => {
            return Err(err(
                "provider.cluster",
                "is required: the name of the Envoy cluster that reaches the auth provider",
            ))
        }
    };
    let authority = match m.get("authority") {
        Some(v) => name(v, "provider.authority", 256)?,
        None => {
            return Err(err(
                "provider.authority",
                "is required: the provider's host name, e.g. `example.eu.auth0.com`",
            ))
        }
    };
    if authority
        .bytes()
        .any(|b| b.is_ascii_whitespace() || b == b'/' || b == b'@')
    {
        return Err(err(
            "provider.authority",
            "must be a host name with an optional port, without scheme or path",
        ));
    }
    let path = match m.get("path") {
        Some(v) => {
            let p = name(v, "provider.path", 1024)?;
            if !p.starts_with('/') || p.contains(' ') {
                return Err(err(
                    "provider.path",
                    "must be a URL path starting with `/`, without spaces",
                ));
            }
            p
        }
        None => DEFAULT_PATH.to_string(),
    };
    let timeout_ms = match m.get("timeout_ms") {
        // The bounds make the cast lossless.
        Some(v) => integer(v, "provider.timeout_ms", 1, 60_000)? as u32,
        None => DEFAULT_TIMEOUT_MS,
    };
    let client_ip_header = match m.get("client_ip_header") {
        Some(v) => Some(header_name(v, "provider.client_ip_header")?),
        None => None,
    };
    Ok(Provider {
        cluster,
        authority,
        path,
        timeout_ms,
        client_ip_header,
    })
}

fn clients(v: &Value) -> Result<ClientPolicy, ConfigError> {
    let m = object(v, "clients")?;
    known_keys(m, "clients", &["default", "allowed"])?;
    let default = match m.get("default") {
        Some(v) => Some(name(v, "clients.default", 128)?),
        None => None,
    };
    let allowed = match m.get("allowed") {
        Some(v) => Some(string_list(v, "clients.allowed", 128)?),
        None => None,
    };
    if let (Some(d), Some(a)) = (&default, &allowed) {
        if !a.contains(d) {
            return Err(err(
                "clients.default",
                format!("`{d}` must also be listed in `clients.allowed`"),
            ));
        }
    }
    Ok(ClientPolicy { default, allowed })
}

fn connections(v: &Value) -> Result<ConnectionPolicy, ConfigError> {
    let m = object(v, "connections")?;
    known_keys(
        m,
        "connections",
        &["default", "database", "identity_providers"],
    )?;
    let default = match m.get("default") {
        Some(v) => name(v, "connections.default", 128)?,
        None => DEFAULT_CONNECTION.to_string(),
    };
    let database = match m.get("database") {
        Some(v) => string_list(v, "connections.database", 128)?,
        None => vec![default.clone()],
    };
    // The default takes the database list's spelling, as a requested connection would.
    let default = match database
        .iter()
        .find(|d| crate::case::eq_ignore_case(d, &default))
    {
        Some(d) => d.clone(),
        None => {
            return Err(err(
                "connections.default",
                format!("`{default}` must also be listed in `connections.database`"),
            ))
        }
    };
    let mut providers = Vec::new();
    if let Some(v) = m.get("identity_providers") {
        let idp = object(v, "connections.identity_providers")?;
        for (conn, display) in idp {
            let key = join("connections.identity_providers", conn);
            if conn.trim().is_empty() || conn.len() > 128 || conn.chars().any(char::is_control) {
                return Err(err(
                    &key,
                    "connection names must be 1 to 128 printable bytes",
                ));
            }
            if database
                .iter()
                .any(|d| crate::case::eq_ignore_case(d, conn))
            {
                return Err(err(
                    &key,
                    "is also listed in `connections.database`; a connection is one or the other",
                ));
            }
            providers.push((conn.clone(), name(display, &key, 128)?));
        }
    }
    Ok(ConnectionPolicy::new(default, database, providers))
}

fn window(v: &Value, key: &str) -> Result<Window, ConfigError> {
    let m = object(v, key)?;
    known_keys(m, key, &["requests", "window_seconds"])?;
    let requests = match m.get("requests") {
        Some(v) => integer(v, &format!("{key}.requests"), 1, 1_000_000_000)? as u32,
        None => return Err(err(&format!("{key}.requests"), "is required")),
    };
    let window_seconds = match m.get("window_seconds") {
        Some(v) => integer(v, &format!("{key}.window_seconds"), 1, 31_536_000)? as u32,
        None => return Err(err(&format!("{key}.window_seconds"), "is required")),
    };
    Ok(Window {
        requests,
        window_seconds,
    })
}

fn limits(v: &Value) -> Result<Limits, ConfigError> {
    let m = object(v, "limits")?;
    known_keys(
        m,
        "limits",
        &[
            "max_body_bytes",
            "per_email",
            "per_ip",
            "on_exceed",
            "slots",
        ],
    )?;
    let max_body_bytes = match m.get("max_body_bytes") {
        Some(v) => integer(v, "limits.max_body_bytes", 1, MAX_BODY_LIMIT)? as usize,
        None => DEFAULT_MAX_BODY_BYTES,
    };
    let per_email = match m.get("per_email") {
        Some(v) => Some(window(v, "limits.per_email")?),
        None => None,
    };
    let per_ip = match m.get("per_ip") {
        Some(v) => Some(window(v, "limits.per_ip")?),
        None => None,
    };
    let on_exceed = match m.get("on_exceed") {
        None => OnExceed::Reject,
        Some(v) => match string(v, "limits.on_exceed")? {
            "reject" => OnExceed::Reject,
            "silent" => OnExceed::Silent,
            other => {
                return Err(err(
                    "limits.on_exceed",
                    format!(
                        "must be \"reject\" or \"silent\", got {}",
                        json_string(other)
                    ),
                ))
            }
        },
    };
    let slots = match m.get("slots") {
        Some(v) => integer(v, "limits.slots", 64, 1_048_576)? as u32,
        None => DEFAULT_RATE_SLOTS,
    };
    Ok(Limits {
        max_body_bytes,
        per_email,
        per_ip,
        on_exceed,
        slots,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> Result<Settings, ConfigError> {
        Settings::from_json(s.as_bytes())
    }

    fn key_of(s: &str) -> String {
        match parse(s) {
            Ok(_) => panic!("accepted: {s}"),
            Err(e) => e.key,
        }
    }

    const MIN: &str = r#"{"provider":{"cluster":"auth0","authority":"t.eu.auth0.com"}}"#;

    #[test]
    fn minimal_configuration_gets_the_documented_defaults() {
        let s = parse(MIN).unwrap();
        assert_eq!(s.paths, vec![DEFAULT_PATH]);
        assert_eq!(s.stat_prefix, "reset_gate");
        assert_eq!(s.provider.path, DEFAULT_PATH);
        assert_eq!(s.provider.timeout_ms, 5000);
        assert_eq!(s.provider.client_ip_header, None);
        assert_eq!(s.clients, ClientPolicy::default());
        assert_eq!(s.connections.default(), DEFAULT_CONNECTION);
        assert_eq!(s.limits.max_body_bytes, 8192);
        assert_eq!(s.limits.on_exceed, OnExceed::Reject);
        assert!(s.limits.per_email.is_none() && s.limits.per_ip.is_none());
    }

    #[test]
    fn full_spec_example_is_accepted() {
        let s = parse(
            r#"{
  "paths": ["/dbconnections/change_password"],
  "provider": {"cluster": "auth0", "authority": "example.eu.auth0.com",
               "path": "/dbconnections/change_password", "timeout_ms": 5000,
               "client_ip_header": "auth0-forwarded-for"},
  "clients": {"default": "CLIENT_ID", "allowed": ["CLIENT_ID"]},
  "connections": {"default": "Username-Password-Authentication",
                  "database": ["Username-Password-Authentication"],
                  "identity_providers": {"acme-saml": "Acme single sign-on"}},
  "limits": {"max_body_bytes": 8192,
             "per_email": {"requests": 5, "window_seconds": 3600},
             "per_ip": {"requests": 30, "window_seconds": 600},
             "on_exceed": "reject"}
}"#,
        )
        .unwrap();
        assert_eq!(
            s.provider.client_ip_header.as_deref(),
            Some("auth0-forwarded-for")
        );
        assert_eq!(s.clients.default.as_deref(), Some("CLIENT_ID"));
        assert_eq!(
            s.limits.per_email,
            Some(Window {
                requests: 5,
                window_seconds: 3600
            })
        );
        assert_eq!(
            s.limits.per_ip,
            Some(Window {
                requests: 30,
                window_seconds: 600
            })
        );
    }

    #[test]
    fn provider_cluster_and_authority_are_required() {
        assert_eq!(key_of("{}"), "provider");
        assert_eq!(
            key_of(r#"{"provider":{"authority":"a.com"}}"#),
            "provider.cluster"
        );
        assert_eq!(
            key_of(r#"{"provider":{"cluster":"c"}}"#),
            "provider.authority"
        );
        assert_eq!(
            key_of(r#"{"provider":{"cluster":"","authority":"a.com"}}"#),
            "provider.cluster"
        );
    }

    #[test]
    fn empty_or_invalid_json_is_refused() {
        assert!(parse("").is_err());
        assert!(parse("[]").is_err());
        assert!(parse("{\"provider\":").is_err());
    }

    #[test]
    fn unknown_keys_name_the_path_and_the_nearest_known_key() {
        let e =
            parse(r#"{"provider":{"cluster":"c","authority":"a.com","timeout":5}}"#).unwrap_err();
        assert_eq!(e.key, "provider.timeout");
        assert!(
            e.rule.contains("did you mean `provider.timeout_ms`?"),
            "{e}"
        );
        let e =
            parse(r#"{"provider":{"cluster":"c","authority":"a.com"},"limit":{}}"#).unwrap_err();
        assert_eq!(e.key, "limit");
        assert!(e.rule.contains("`limits`"), "{e}");
        let e = parse(
            r#"{"provider":{"cluster":"c","authority":"a.com"},"limits":{"per_emial":{"requests":1,"window_seconds":1}}}"#,
        )
        .unwrap_err();
        assert_eq!(e.key, "limits.per_emial");
        assert!(e.rule.contains("`limits.per_email`"), "{e}");
    }

    #[test]
    fn odd_unknown_keys_are_quoted() {
        let e = parse(r#"{"":{}}"#).unwrap_err();
        assert_eq!(e.key, "\"\"");
        assert!(e.to_string().starts_with("configuration key `\"\"`"), "{e}");
        let e = parse(r#"{"x\nERROR fake":1}"#).unwrap_err();
        assert_eq!(e.key, "\"x\\nERROR fake\"");
        assert!(!e.to_string().contains('\n'));
        let e = parse(
            r#"{"provider":{"cluster":"c","authority":"a.com"},"connections":{"identity_providers":{"a b":1}}}"#,
        )
        .unwrap_err();
        assert_eq!(e.key, "connections.identity_providers.\"a b\"");
        // Values echoed in a rule are escaped too (found by fuzzing).
        let e = parse(
            r#"{"provider":{"cluster":"c","authority":"a.com"},"limits":{"on_exceed":"\nlent"}}"#,
        )
        .unwrap_err();
        assert_eq!(e.rule, r#"must be "reject" or "silent", got "\nlent""#);
        assert!(!e.to_string().contains('\n'));
    }

    #[test]
    fn wrong_types_are_named() {
        let e = parse(r#"{"provider":{"cluster":"c","authority":"a.com","timeout_ms":"5000"}}"#)
            .unwrap_err();
        assert_eq!(e.key, "provider.timeout_ms");
        assert!(e.rule.contains("got a string"), "{e}");
        assert_eq!(
            key_of(r#"{"provider":{"cluster":1,"authority":"a.com"}}"#),
            "provider.cluster"
        );
        assert_eq!(
            key_of(r#"{"provider":{"cluster":"c","authority":"a.com"},"paths":"/x"}"#),
            "paths"
        );
        assert_eq!(
            key_of(r#"{"provider":{"cluster":"c","authority":"a.com"},"clients":[]}"#),
            "clients"
        );
    }

    #[test]
    fn out_of_range_numbers_are_refused() {
        for t in ["0", "60001", "-1", "1.5", "1e9"] {
            let doc =
                format!(r#"{{"provider":{{"cluster":"c","authority":"a.com","timeout_ms":{t}}}}}"#);
            assert_eq!(key_of(&doc), "provider.timeout_ms", "{t}");
        }
        for t in ["1", "60000"] {
            let doc =
                format!(r#"{{"provider":{{"cluster":"c","authority":"a.com","timeout_ms":{t}}}}}"#);
            assert!(parse(&doc).is_ok(), "{t}");
        }
        let base = r#"{"provider":{"cluster":"c","authority":"a.com"},"limits":"#;
        assert_eq!(
            key_of(&format!(r#"{base}{{"max_body_bytes":0}}}}"#)),
            "limits.max_body_bytes"
        );
        assert_eq!(
            key_of(&format!(r#"{base}{{"max_body_bytes":1048577}}}}"#)),
            "limits.max_body_bytes"
        );
        assert!(parse(&format!(r#"{base}{{"max_body_bytes":64}}}}"#)).is_ok());
        assert_eq!(
            key_of(&format!(
                r#"{base}{{"per_ip":{{"requests":0,"window_seconds":5}}}}}}"#
            )),
            "limits.per_ip.requests"
        );
        assert_eq!(
            key_of(&format!(r#"{base}{{"per_ip":{{"requests":3}}}}}}"#)),
            "limits.per_ip.window_seconds"
        );
        assert_eq!(
            key_of(&format!(r#"{base}{{"on_exceed":"drop"}}}}"#)),
            "limits.on_exceed"
        );
    }

    #[test]
    fn default_connection_must_be_a_database_connection() {
        let e = parse(
            r#"{"provider":{"cluster":"c","authority":"a.com"},"connections":{"default":"Other","database":["Username-Password-Authentication"]}}"#,
        )
        .unwrap_err();
        assert_eq!(e.key, "connections.default");
        let s = parse(
            r#"{"provider":{"cluster":"c","authority":"a.com"},"connections":{"default":"Users"}}"#,
        )
        .unwrap();
        assert_eq!(s.connections.default(), "Users");
        let s = parse(
            r#"{"provider":{"cluster":"c","authority":"a.com"},"connections":{"default":"users","database":["Users"]}}"#,
        )
        .unwrap();
        assert_eq!(s.connections.default(), "Users");
    }

    #[test]
    fn default_client_must_be_allowed() {
        let e = parse(
            r#"{"provider":{"cluster":"c","authority":"a.com"},"clients":{"default":"A","allowed":["B"]}}"#,
        )
        .unwrap_err();
        assert_eq!(e.key, "clients.default");
        assert_eq!(
            key_of(r#"{"provider":{"cluster":"c","authority":"a.com"},"clients":{"allowed":[]}}"#),
            "clients.allowed"
        );
    }

    #[test]
    fn paths_must_be_plain_paths() {
        let base = r#"{"provider":{"cluster":"c","authority":"a.com"},"paths":"#;
        assert_eq!(key_of(&format!(r#"{base}["x"]}}"#)), "paths[0]");
        assert_eq!(key_of(&format!(r#"{base}["/a","/b?c"]}}"#)), "paths[1]");
        assert_eq!(key_of(&format!(r#"{base}[]}}"#)), "paths");
        let s = parse(&format!(r#"{base}["/a","/b"]}}"#)).unwrap();
        assert!(s.is_reset_path("/b?x=1"));
        assert!(!s.is_reset_path("/b/c"));
    }

    #[test]
    fn reset_path_match_ignores_the_query_only() {
        let s = parse(MIN).unwrap();
        assert!(s.is_reset_path("/dbconnections/change_password"));
        assert!(s.is_reset_path("/dbconnections/change_password?x=y"));
        assert!(!s.is_reset_path("/dbconnections/change_password/challenge"));
        assert!(!s.is_reset_path("/dbconnections/change_password/"));
        assert!(!s.is_reset_path("/DBCONNECTIONS/change_password"));
        assert!(!s.is_reset_path(""));
    }

    #[test]
    fn client_ip_header_must_be_a_free_header_name() {
        let base = r#"{"provider":{"cluster":"c","authority":"a.com","client_ip_header":"#;
        assert_eq!(
            key_of(&format!(r#"{base}"Bad Header"}}}}"#)),
            "provider.client_ip_header"
        );
        assert_eq!(
            key_of(&format!(r#"{base}"host"}}}}"#)),
            "provider.client_ip_header"
        );
        assert!(parse(&format!(r#"{base}"x-client-ip"}}}}"#)).is_ok());
        let s = parse(&format!(r#"{base}"X-Client-IP"}}}}"#)).unwrap();
        assert_eq!(s.provider.client_ip_header.as_deref(), Some("x-client-ip"));
    }

    #[test]
    fn identity_provider_names_must_not_be_database_connections() {
        let e = parse(
            r#"{"provider":{"cluster":"c","authority":"a.com"},"connections":{"identity_providers":{"username-password-authentication":"X"}}}"#,
        )
        .unwrap_err();
        assert_eq!(
            e.key,
            "connections.identity_providers.username-password-authentication"
        );
    }

    #[test]
    fn stat_prefix_is_a_stats_name() {
        let base = r#"{"provider":{"cluster":"c","authority":"a.com"},"stat_prefix":"#;
        assert_eq!(key_of(&format!(r#"{base}"Bad Prefix"}}"#)), "stat_prefix");
        assert_eq!(key_of(&format!(r#"{base}".x"}}"#)), "stat_prefix");
        let s = parse(&format!(r#"{base}"reset_gate.eu"}}"#)).unwrap();
        assert_eq!(s.stat_prefix, "reset_gate.eu");
    }

    #[test]
    fn nearest_suggests_only_plausible_keys() {
        assert_eq!(
            nearest("clusetr", &["cluster", "authority"]),
            Some("cluster")
        );
        assert_eq!(nearest("zzzzzzzzzzzz", &["cluster", "authority"]), None);
        assert_eq!(nearest("TIMEOUT_MS", &["timeout_ms"]), Some("timeout_ms"));
    }
}
