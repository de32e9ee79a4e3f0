//! The replies the filter sends itself: Auth0-shaped JSON errors and the silent success.

use crate::outcome::Outcome;

/// The text Auth0 answers a successful reset request with.
pub const SUCCESS_TEXT: &str = "We've just sent you an email to reset your password.";

/// A reply to send to the client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

/// A refusal decided by the filter: status, Auth0 error code, and a description that names the
/// field and the rule in words a user can act on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejection {
    pub status: u16,
    pub code: &'static str,
    pub description: String,
    pub outcome: Outcome,
    /// Extra headers (`Allow`, `Retry-After`).
    pub headers: Vec<(&'static str, String)>,
}

impl Rejection {
    fn new(status: u16, code: &'static str, outcome: Outcome, description: String) -> Self {
        Rejection {
            status,
            code,
            description,
            outcome,
            headers: Vec::new(),
        }
    }

    /// 400 `invalid_request`: the body or one of its fields breaks a rule.
    pub fn invalid(description: impl Into<String>) -> Self {
        Self::new(
            400,
            "invalid_request",
            Outcome::RejectedInvalid,
            description.into(),
        )
    }

    pub fn bad_connection(description: String) -> Self {
        Self::new(
            400,
            "bad.connection",
            Outcome::RejectedConnection,
            description,
        )
    }

    pub fn unauthorized_client() -> Self {
        Self::new(
            403,
            "unauthorized_client",
            Outcome::RejectedClient,
            "The client_id is not allowed to request password resets here.".into(),
        )
    }

    pub fn method_not_allowed() -> Self {
        let mut r = Self::new(
            405,
            "method_not_allowed",
            Outcome::RejectedMethod,
            "Password reset requests must use the POST method.".into(),
        );
        r.headers.push(("allow", "POST".into()));
        r
    }

    pub fn unsupported_media_type(description: impl Into<String>) -> Self {
        Self::new(
            415,
            "invalid_request",
            Outcome::RejectedMediaType,
            description.into(),
        )
    }

    pub fn too_large(limit: usize) -> Self {
        Self::new(
            413,
            "invalid_request",
            Outcome::RejectedTooLarge,
            format!("The request body is larger than the {limit} bytes allowed."),
        )
    }

    pub fn too_many_requests(retry_after_secs: u64) -> Self {
        let mut r = Self::new(
            429,
            "too_many_requests",
            Outcome::RateLimited,
            format!(
                "Too many password reset requests. Try again in {}.",
                human_wait(retry_after_secs)
            ),
        );
        r.headers
            .push(("retry-after", retry_after_secs.max(1).to_string()));
        r
    }

    /// 502/503/504 `temporarily_unavailable`: the provider could not serve the request.
    pub fn unavailable(status: u16, outcome: Outcome) -> Self {
        let description = match status {
            504 => "The password reset service did not answer in time. Please try again.",
            _ => "The password reset service is temporarily unavailable. Please try again later.",
        };
        Self::new(
            status,
            "temporarily_unavailable",
            outcome,
            description.into(),
        )
    }

    /// 500: Envoy is not configured the way the filter needs.
    pub fn misconfigured() -> Self {
        Self::new(
            500,
            "server_error",
            Outcome::Misconfigured,
            "The gateway is misconfigured and cannot process password resets. Please try again later."
                .into(),
        )
    }

    pub fn into_reply(self) -> Reply {
        let body = error_body(self.code, &self.description);
        let mut headers = vec![
            ("content-type".to_string(), "application/json".to_string()),
            ("cache-control".to_string(), "no-store".to_string()),
        ];
        headers.extend(self.headers.into_iter().map(|(k, v)| (k.to_string(), v)));
        Reply {
            status: self.status,
            headers,
            body,
        }
    }
}

fn error_body(code: &str, description: &str) -> Vec<u8> {
    // The Auth0 shape puts `error` first; writing the object by hand keeps that order.
    let mut out = Vec::with_capacity(description.len() + code.len() + 40);
    out.extend_from_slice(b"{\"error\":");
    push_json_string(&mut out, code);
    out.extend_from_slice(b",\"error_description\":");
    push_json_string(&mut out, description);
    out.push(b'}');
    out
}

/// Appends `s` as a JSON string literal: quotes, backslashes and control characters escaped,
/// everything else (UTF-8 included) as is.
pub fn push_json_string(out: &mut Vec<u8>, s: &str) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    out.push(b'"');
    for &b in s.as_bytes() {
        match b {
            b'"' => out.extend_from_slice(b"\\\""),
            b'\\' => out.extend_from_slice(b"\\\\"),
            b'\n' => out.extend_from_slice(b"\\n"),
            b'\r' => out.extend_from_slice(b"\\r"),
            b'\t' => out.extend_from_slice(b"\\t"),
            0..=0x1f | 0x7f => {
                out.extend_from_slice(b"\\u00");
                out.push(HEX[usize::from(b >> 4)]);
                out.push(HEX[usize::from(b & 0xf)]);
            }
            _ => out.push(b),
        }
    }
    out.push(b'"');
}

/// The reply sent instead of calling the provider when a limit is exceeded in silent mode: the
/// same status, type and text as the provider's success.
pub fn silent_success() -> Reply {
    Reply {
        status: 200,
        headers: vec![
            (
                "content-type".to_string(),
                "text/html; charset=utf-8".to_string(),
            ),
            ("cache-control".to_string(), "no-store".to_string()),
        ],
        body: SUCCESS_TEXT.as_bytes().to_vec(),
    }
}

fn human_wait(secs: u64) -> String {
    match secs {
        0 | 1 => "1 second".into(),
        s if s < 120 => format!("{s} seconds"),
        s if s < 7200 => format!("{} minutes", s.div_ceil(60)),
        s => format!("{} hours", s.div_ceil(3600)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header<'a>(r: &'a Reply, name: &str) -> Option<&'a str> {
        r.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    #[test]
    fn errors_are_auth0_shaped_json_with_error_first() {
        let r = Rejection::invalid("The email field is required.").into_reply();
        assert_eq!(r.status, 400);
        assert_eq!(
            String::from_utf8(r.body.clone()).unwrap(),
            r#"{"error":"invalid_request","error_description":"The email field is required."}"#
        );
        assert_eq!(header(&r, "content-type"), Some("application/json"));
        assert_eq!(header(&r, "cache-control"), Some("no-store"));
    }

    #[test]
    fn descriptions_are_json_escaped() {
        let r = Rejection::invalid("quote \" and \\ and \u{1}").into_reply();
        let v: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
        assert_eq!(v["error_description"], "quote \" and \\ and \u{1}");
    }

    #[test]
    fn json_strings_round_trip_through_a_real_parser() {
        for s in [
            "plain",
            "quote\"",
            "back\\slash",
            "nl\n\r\t",
            "\u{0}\u{1f}\u{7f}",
            "é😀</script>",
        ] {
            let mut out = Vec::new();
            push_json_string(&mut out, s);
            let back: String = serde_json::from_slice(&out).unwrap();
            assert_eq!(back, s);
        }
    }

    #[test]
    fn method_not_allowed_says_allow_post() {
        let r = Rejection::method_not_allowed().into_reply();
        assert_eq!(r.status, 405);
        assert_eq!(header(&r, "allow"), Some("POST"));
    }

    #[test]
    fn too_many_requests_carries_retry_after() {
        let r = Rejection::too_many_requests(90).into_reply();
        assert_eq!(r.status, 429);
        assert_eq!(header(&r, "retry-after"), Some("90"));
        let v: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
        assert_eq!(v["error"], "too_many_requests");
        assert!(v["error_description"]
            .as_str()
            .unwrap()
            .contains("90 seconds"));
        let r = Rejection::too_many_requests(0).into_reply();
        assert_eq!(header(&r, "retry-after"), Some("1"));
    }

    #[test]
    fn silent_success_looks_like_the_provider() {
        let r = silent_success();
        assert_eq!(r.status, 200);
        assert_eq!(header(&r, "content-type"), Some("text/html; charset=utf-8"));
        assert_eq!(r.body, SUCCESS_TEXT.as_bytes());
    }

    #[test]
    fn human_wait_rounds_up() {
        assert_eq!(human_wait(1), "1 second");
        assert_eq!(human_wait(59), "59 seconds");
        assert_eq!(human_wait(121), "3 minutes");
        assert_eq!(human_wait(3600), "60 minutes");
        assert_eq!(human_wait(7201), "3 hours");
    }
}
