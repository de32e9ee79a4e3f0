//! From the fields a client sent to the one request the provider receives.

use crate::body::Fields;
use crate::config::Settings;
use crate::email;
use crate::reply::{push_json_string, Rejection};

/// A normalised, policy-checked password-reset request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResetRequest {
    pub client_id: String,
    pub email: String,
    pub connection: String,
    pub organization: Option<String>,
    pub captcha: Option<String>,
    pub state: Option<String>,
}

impl ResetRequest {
    /// Applies SPEC §4 and §5: defaults, trimming, the email rules, the connection and client
    /// policies. Everything the provider does not need is dropped here.
    pub fn from_fields(fields: &Fields, settings: &Settings) -> Result<ResetRequest, Rejection> {
        let email = match (&fields.email, &fields.username) {
            (Some(e), None) => email::normalise(e, "email")?,
            (None, Some(u)) => email::normalise(u, "username")?,
            (Some(e), Some(u)) => {
                let e = email::normalise(e, "email")?;
                // Old auth0.js sends both; they must name the same person.
                match email::normalise(u, "username") {
                    Ok(u) if u == e => e,
                    _ => {
                        return Err(Rejection::invalid(
                            "The email and username fields differ; send only email.",
                        ))
                    }
                }
            }
            (None, None) => {
                return Err(Rejection::invalid(
                    "The email field is required: the address to send the reset link to.",
                ))
            }
        };

        let connection = settings
            .connections
            .resolve(fields.connection.as_deref().map(str::trim))?
            .to_string();

        let client_id = match fields.client_id.as_deref().filter(|c| !c.is_empty()) {
            Some(c) => c.to_string(),
            None => match &settings.clients.default {
                Some(d) => d.clone(),
                None => {
                    return Err(Rejection::invalid(
                        "The client_id field is required: the application's client ID.",
                    ))
                }
            },
        };
        if let Some(allowed) = &settings.clients.allowed {
            if !allowed.contains(&client_id) {
                return Err(Rejection::unauthorized_client());
            }
        }

        let organization = match fields.organization.as_deref().filter(|o| !o.is_empty()) {
            Some(o) if is_organization(o) => Some(o.to_string()),
            Some(_) => {
                return Err(Rejection::invalid(
                    "The organization field must be an organization ID or name: letters, digits, `-` and `_`.",
                ))
            }
            None => None,
        };

        Ok(ResetRequest {
            client_id,
            email,
            connection,
            organization,
            captcha: fields.captcha.clone(),
            state: fields.state.clone(),
        })
    }

    /// The provider's JSON body: exactly these fields, in this order.
    pub fn to_json(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(160);
        out.push(b'{');
        let field = |out: &mut Vec<u8>, name: &str, value: &str| {
            if out.len() > 1 {
                out.push(b',');
            }
            push_json_string(out, name);
            out.push(b':');
            push_json_string(out, value);
        };
        field(&mut out, "client_id", &self.client_id);
        field(&mut out, "email", &self.email);
        field(&mut out, "connection", &self.connection);
        for (name, value) in [
            ("organization", &self.organization),
            ("captcha", &self.captcha),
            ("state", &self.state),
        ] {
            if let Some(v) = value {
                field(&mut out, name, v);
            }
        }
        out.push(b'}');
        out
    }
}

/// Auth0 organization IDs (`org_…`) and names: ASCII letters, digits, `-`, `_`.
fn is_organization(s: &str) -> bool {
    s.bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::body::{parse, BodyKind};

    fn settings(extra: &str) -> Settings {
        Settings::from_json(
            format!(
                r#"{{"provider":{{"cluster":"auth0","authority":"t.auth0.com"}},
                     "connections":{{"database":["Username-Password-Authentication","Staff"]}}{extra}}}"#
            )
            .as_bytes(),
        )
        .unwrap()
    }

    fn with_default_client() -> Settings {
        settings(r#","clients":{"default":"CID","allowed":["CID","other"]}"#)
    }

    fn normalise(body: &str, s: &Settings) -> Result<ResetRequest, Rejection> {
        ResetRequest::from_fields(&parse(BodyKind::Json, body.as_bytes())?, s)
    }

    fn forwarded(body: &str) -> String {
        String::from_utf8(normalise(body, &with_default_client()).unwrap().to_json()).unwrap()
    }

    fn refused(body: &str, s: &Settings) -> Rejection {
        normalise(body, s).unwrap_err()
    }

    #[test]
    fn lock_ios_v1_body_is_reduced_to_the_spec_fields() {
        assert_eq!(
            forwarded(
                r#"{"email":"Jane@Example.com","client_id":"CID","connection":"Username-Password-Authentication",
                    "scope":"openid offline_access","device":"Ana’s iPhone","state":"xyz","nonce":"n","protocol":"oauth2"}"#
            ),
            r#"{"client_id":"CID","email":"Jane@example.com","connection":"Username-Password-Authentication","state":"xyz"}"#
        );
    }

    #[test]
    fn defaults_fill_client_id_and_connection() {
        assert_eq!(
            forwarded(r#"{"email":"a@b.co"}"#),
            r#"{"client_id":"CID","email":"a@b.co","connection":"Username-Password-Authentication"}"#
        );
        assert_eq!(
            forwarded(r#"{"email":"a@b.co","connection":"  ","client_id":""}"#),
            r#"{"client_id":"CID","email":"a@b.co","connection":"Username-Password-Authentication"}"#
        );
    }

    #[test]
    fn connection_is_trimmed_and_takes_the_configured_spelling() {
        assert_eq!(
            forwarded(r#"{"email":"a@b.co","connection":" staff "}"#),
            r#"{"client_id":"CID","email":"a@b.co","connection":"Staff"}"#
        );
    }

    #[test]
    fn optional_fields_keep_spec_order() {
        assert_eq!(
            forwarded(
                r#"{"state":"s","captcha":"c","organization":"org_123","email":"a@b.co","client_id":"other"}"#
            ),
            r#"{"client_id":"other","email":"a@b.co","connection":"Username-Password-Authentication","organization":"org_123","captcha":"c","state":"s"}"#
        );
    }

    #[test]
    fn legacy_password_and_extras_are_never_forwarded() {
        let s = with_default_client();
        let r = ResetRequest::from_fields(
            &parse(
                BodyKind::Form,
                b"client_id=CID&connection=Username-Password-Authentication&email=a%40b.co&password=hunter2&tenant=t",
            )
            .unwrap(),
            &s,
        )
        .unwrap();
        let json = String::from_utf8(r.to_json()).unwrap();
        assert!(
            !json.contains("hunter2") && !json.contains("tenant"),
            "{json}"
        );
    }

    #[test]
    fn username_is_an_alias_for_email() {
        assert_eq!(
            forwarded(r#"{"username":"a@B.co"}"#),
            r#"{"client_id":"CID","email":"a@b.co","connection":"Username-Password-Authentication"}"#
        );
        assert_eq!(
            forwarded(r#"{"username":"a@B.co","email":" a@b.CO"}"#),
            r#"{"client_id":"CID","email":"a@b.co","connection":"Username-Password-Authentication"}"#
        );
        let e = refused(
            r#"{"username":"x@b.co","email":"a@b.co"}"#,
            &with_default_client(),
        );
        assert_eq!(e.status, 400);
        assert!(e.description.contains("username"));
        let e = refused(
            r#"{"username":"jane","email":"a@b.co"}"#,
            &with_default_client(),
        );
        assert_eq!(e.status, 400);
    }

    #[test]
    fn username_that_is_not_an_email_names_username() {
        let e = refused(r#"{"username":"jane"}"#, &with_default_client());
        assert!(e.description.contains("username"), "{}", e.description);
    }

    #[test]
    fn email_is_required() {
        let e = refused(r#"{"client_id":"CID"}"#, &with_default_client());
        assert_eq!(e.code, "invalid_request");
        assert!(e.description.contains("email"));
    }

    #[test]
    fn client_id_is_required_without_a_default() {
        let e = refused(r#"{"email":"a@b.co"}"#, &settings(""));
        assert_eq!(e.status, 400);
        assert!(e.description.contains("client_id"));
        assert!(normalise(r#"{"email":"a@b.co","client_id":"x"}"#, &settings("")).is_ok());
    }

    #[test]
    fn clients_outside_the_allowed_list_are_unauthorized() {
        let e = refused(
            r#"{"email":"a@b.co","client_id":"stranger"}"#,
            &with_default_client(),
        );
        assert_eq!(e.status, 403);
        assert_eq!(e.code, "unauthorized_client");
        assert!(e.description.contains("client_id"));
    }

    #[test]
    fn social_connections_are_refused_before_anything_else_is_sent() {
        let e = refused(
            r#"{"email":"a@b.co","connection":"google-oauth2"}"#,
            &with_default_client(),
        );
        assert_eq!(e.status, 400);
        assert_eq!(e.code, "bad.connection");
        assert!(e.description.contains("Google"));
    }

    #[test]
    fn organization_must_look_like_an_id_or_name() {
        let e = refused(
            r#"{"email":"a@b.co","organization":"org 1"}"#,
            &with_default_client(),
        );
        assert!(e.description.contains("organization"));
        assert_eq!(
            forwarded(r#"{"email":"a@b.co","organization":""}"#),
            r#"{"client_id":"CID","email":"a@b.co","connection":"Username-Password-Authentication"}"#
        );
    }

    #[test]
    fn output_is_valid_json_for_any_strings() {
        let r = ResetRequest {
            client_id: "c\"id".into(),
            email: "é\\@b.co".into(),
            connection: "x".into(),
            organization: None,
            captcha: Some("😀".into()),
            state: Some("</script>".into()),
        };
        let v: serde_json::Value = serde_json::from_slice(&r.to_json()).unwrap();
        assert_eq!(v["client_id"], "c\"id");
        assert_eq!(v["captcha"], "😀");
    }
}
