//! The callout to the auth provider: what is sent, and how its answer becomes the client's reply.

use crate::config::Provider;
use crate::outcome::Outcome;
use crate::reply::{Rejection, Reply};
use crate::request::ResetRequest;

/// The largest provider body relayed to a client. Auth0's answers are a sentence or a small JSON
/// object; anything much larger is a fault, not a message for a user.
pub const MAX_ANSWER_BYTES: usize = 64 * 1024;

/// Headers of the client request that travel to the provider.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ClientMeta {
    pub auth0_client: Option<String>,
    pub user_agent: Option<String>,
    pub request_id: Option<String>,
    /// Envoy's `source.address` without the port.
    pub address: Option<String>,
}

/// Everything `dispatch_http_call` needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Callout {
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

pub fn callout(req: &ResetRequest, provider: &Provider, client: &ClientMeta) -> Callout {
    let mut headers = vec![
        (":method".to_string(), "POST".to_string()),
        (":path".to_string(), provider.path.clone()),
        (":authority".to_string(), provider.authority.clone()),
        ("content-type".to_string(), "application/json".to_string()),
    ];
    let optional = [
        ("auth0-client", &client.auth0_client),
        ("user-agent", &client.user_agent),
        ("x-request-id", &client.request_id),
    ];
    for (name, value) in optional {
        if let Some(v) = value {
            headers.push((name.to_string(), v.clone()));
        }
    }
    if let (Some(name), Some(addr)) = (&provider.client_ip_header, &client.address) {
        headers.push((name.clone(), addr.clone()));
    }
    Callout {
        headers,
        body: req.to_json(),
    }
}

/// Strips the port from Envoy's `source.address` (`1.2.3.4:5678`, `[::1]:5678`).
pub fn address_without_port(source: &str) -> &str {
    if let Some(rest) = source.strip_prefix('[') {
        return rest.split(']').next().unwrap_or(rest);
    }
    match source.rsplit_once(':') {
        // One colon: IPv4 with a port. More: a bare IPv6 address.
        Some((host, port)) if !host.contains(':') && port.bytes().all(|b| b.is_ascii_digit()) => {
            host
        }
        _ => source,
    }
}

/// What came back from the callout.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProviderAnswer {
    /// `None` when the callout failed without any response.
    pub status: Option<u16>,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    /// The body's size as Envoy reported it (the body is not read when it is too large).
    pub body_size: usize,
    /// Whether `provider.timeout_ms` had passed when the answer arrived.
    pub timed_out: bool,
}

/// Headers of the provider's answer that reach the client.
const RELAYED: &[&str] = &[
    "content-type",
    "x-ratelimit-limit",
    "x-ratelimit-remaining",
    "x-ratelimit-reset",
    "retry-after",
];

/// Maps the provider's answer to the client's reply (SPEC §6): 2xx and 4xx are relayed; 503 and
/// 504 keep their status; no answer is 503 (504 past the timeout); anything else is 502.
/// The answer is taken by value so that a relayed body is moved, not copied.
pub fn map_answer(answer: ProviderAnswer) -> (Reply, Outcome) {
    let unavailable = |status, outcome| {
        (
            Rejection::unavailable(status, outcome).into_reply(),
            outcome,
        )
    };
    let Some(status) = answer.status else {
        return if answer.timed_out {
            unavailable(504, Outcome::ProviderTimeout)
        } else {
            unavailable(503, Outcome::ProviderUnreachable)
        };
    };
    match status {
        200..=299 | 400..=499 if answer.body_size <= MAX_ANSWER_BYTES => {
            let mut headers: Vec<(String, String)> = answer
                .headers
                .into_iter()
                .filter(|(k, _)| RELAYED.iter().any(|r| k.eq_ignore_ascii_case(r)))
                .map(|(k, v)| (k.to_ascii_lowercase(), v))
                .collect();
            headers.push(("cache-control".into(), "no-store".into()));
            let outcome = if status < 300 {
                Outcome::Provider2xx
            } else {
                Outcome::Provider4xx
            };
            let reply = Reply {
                status,
                headers,
                body: answer.body,
            };
            (reply, outcome)
        }
        504 => unavailable(
            504,
            if answer.timed_out || answer.body.starts_with(b"upstream request timeout") {
                Outcome::ProviderTimeout
            } else {
                Outcome::Provider5xx
            },
        ),
        503 if is_envoy_connect_failure(&answer.body) => {
            unavailable(503, Outcome::ProviderUnreachable)
        }
        503 => unavailable(503, Outcome::Provider5xx),
        _ => unavailable(502, Outcome::Provider5xx),
    }
}

/// Envoy answers a callout it could not deliver with its own 503 text.
fn is_envoy_connect_failure(body: &[u8]) -> bool {
    body.starts_with(b"upstream connect error")
        || body.starts_with(b"no healthy upstream")
        || body.starts_with(b"upstream reset")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn provider(ip_header: Option<&str>) -> Provider {
        Provider {
            cluster: "auth0".into(),
            authority: "tenant.eu.auth0.com".into(),
            path: "/dbconnections/change_password".into(),
            timeout_ms: 5000,
            client_ip_header: ip_header.map(str::to_string),
        }
    }

    fn request() -> ResetRequest {
        ResetRequest {
            client_id: "CID".into(),
            email: "a@b.co".into(),
            connection: "Username-Password-Authentication".into(),
            organization: None,
            captcha: None,
            state: None,
        }
    }

    fn answer(status: u16, headers: &[(&str, &str)], body: &str) -> ProviderAnswer {
        ProviderAnswer {
            status: Some(status),
            headers: headers
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            body: body.as_bytes().to_vec(),
            body_size: body.len(),
            timed_out: false,
        }
    }

    fn error_code(r: &Reply) -> String {
        let v: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
        v["error"].as_str().unwrap().to_string()
    }

    #[test]
    fn callout_carries_configured_authority_and_client_headers() {
        let meta = ClientMeta {
            auth0_client: Some("eyJuYW1lIjoiTG9jayJ9".into()),
            user_agent: Some("Lock/1.0".into()),
            request_id: Some("rid-1".into()),
            address: Some("10.0.0.1".into()),
        };
        let c = callout(&request(), &provider(Some("auth0-forwarded-for")), &meta);
        let h: Vec<(&str, &str)> = c
            .headers
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        assert_eq!(
            h,
            vec![
                (":method", "POST"),
                (":path", "/dbconnections/change_password"),
                (":authority", "tenant.eu.auth0.com"),
                ("content-type", "application/json"),
                ("auth0-client", "eyJuYW1lIjoiTG9jayJ9"),
                ("user-agent", "Lock/1.0"),
                ("x-request-id", "rid-1"),
                ("auth0-forwarded-for", "10.0.0.1"),
            ]
        );
        let c = callout(&request(), &provider(None), &meta);
        assert_eq!(c.headers.len(), 7);
    }

    #[test]
    fn addresses_lose_their_port() {
        assert_eq!(address_without_port("127.0.0.1:5555"), "127.0.0.1");
        assert_eq!(address_without_port("[::1]:5555"), "::1");
        assert_eq!(address_without_port("::1"), "::1");
        assert_eq!(address_without_port("10.1.2.3"), "10.1.2.3");
    }

    #[test]
    fn success_is_relayed_with_its_type_and_rate_limit_headers() {
        let (r, o) = map_answer(answer(
            200,
            &[
                ("content-type", "text/html; charset=utf-8"),
                ("x-ratelimit-limit", "10"),
                ("X-RateLimit-Remaining", "9"),
                ("x-ratelimit-reset", "1700000000"),
                ("set-cookie", "secret"),
                ("server", "nginx"),
            ],
            "We've just sent you an email to reset your password.",
        ));
        assert_eq!(o, Outcome::Provider2xx);
        assert_eq!(r.status, 200);
        assert_eq!(
            r.body,
            b"We've just sent you an email to reset your password."
        );
        let names: Vec<&str> = r.headers.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(
            names,
            vec![
                "content-type",
                "x-ratelimit-limit",
                "x-ratelimit-remaining",
                "x-ratelimit-reset",
                "cache-control"
            ]
        );
    }

    #[test]
    fn client_errors_are_relayed() {
        let body = r#"{"error":"too_many_requests","error_description":"slow down"}"#;
        let (r, o) = map_answer(answer(
            429,
            &[("content-type", "application/json"), ("retry-after", "30")],
            body,
        ));
        assert_eq!(o, Outcome::Provider4xx);
        assert_eq!((r.status, r.body.as_slice()), (429, body.as_bytes()));
        assert!(r.headers.contains(&("retry-after".into(), "30".into())));
    }

    #[test]
    fn provider_trouble_keeps_503_and_504_and_hides_the_body() {
        for (status, want, outcome) in [
            (503, 503, Outcome::Provider5xx),
            (504, 504, Outcome::Provider5xx),
            (500, 502, Outcome::Provider5xx),
            (502, 502, Outcome::Provider5xx),
            (501, 502, Outcome::Provider5xx),
            (302, 502, Outcome::Provider5xx),
            (101, 502, Outcome::Provider5xx),
        ] {
            let (r, o) = map_answer(answer(status, &[], "stack trace at db01"));
            assert_eq!((r.status, o), (want, outcome), "{status}");
            assert_eq!(error_code(&r), "temporarily_unavailable");
            assert!(!String::from_utf8_lossy(&r.body).contains("db01"));
        }
    }

    #[test]
    fn envoy_failures_are_classified() {
        let (r, o) = map_answer(answer(
            503,
            &[("content-type", "text/plain")],
            "upstream connect error or disconnect/reset before headers. reset reason: connection failure",
        ));
        assert_eq!((r.status, o), (503, Outcome::ProviderUnreachable));
        let mut a = answer(504, &[], "upstream request timeout");
        a.timed_out = true;
        let (r, o) = map_answer(a.clone());
        assert_eq!((r.status, o), (504, Outcome::ProviderTimeout));
    }

    #[test]
    fn no_answer_is_503_or_504_after_the_timeout() {
        let mut a = ProviderAnswer::default();
        let (r, o) = map_answer(a.clone());
        assert_eq!((r.status, o), (503, Outcome::ProviderUnreachable));
        a.timed_out = true;
        let (r, o) = map_answer(a.clone());
        assert_eq!((r.status, o), (504, Outcome::ProviderTimeout));
    }

    #[test]
    fn huge_answers_are_not_relayed() {
        let mut a = answer(200, &[("content-type", "text/plain")], "x");
        a.body_size = MAX_ANSWER_BYTES + 1;
        let (r, o) = map_answer(a.clone());
        assert_eq!((r.status, o), (502, Outcome::Provider5xx));
    }
}
