//! Which connections may reset a password here, and what to tell users of the others.
//!
//! Only database connections (Auth0 strategy `auth0`) have passwords the provider can reset.
//! Social, enterprise and passwordless users must go to their identity provider, and the refusal
//! says so by name.

use crate::reply::Rejection;

/// The compiled `connections` configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectionPolicy {
    default: String,
    database: Vec<String>,
    /// (configured name, display name)
    identity_providers: Vec<(String, String)>,
}

/// Well-known Auth0 strategy names (which are also the default connection names of social
/// connections) and who manages their passwords.
const WELL_KNOWN: &[(&str, Managed)] = &[
    ("google-oauth2", Managed::By("Google")),
    ("google-apps", Managed::By("Google Workspace")),
    ("facebook", Managed::By("Facebook")),
    ("github", Managed::By("GitHub")),
    ("apple", Managed::By("Apple")),
    ("windowslive", Managed::By("Microsoft")),
    ("twitter", Managed::By("Twitter")),
    ("linkedin", Managed::By("LinkedIn")),
    ("amazon", Managed::By("Amazon")),
    ("bitbucket", Managed::By("Bitbucket")),
    ("box", Managed::By("Box")),
    ("dropbox", Managed::By("Dropbox")),
    ("instagram", Managed::By("Instagram")),
    ("line", Managed::By("LINE")),
    ("paypal", Managed::By("PayPal")),
    ("paypal-sandbox", Managed::By("PayPal")),
    ("salesforce", Managed::By("Salesforce")),
    ("salesforce-sandbox", Managed::By("Salesforce")),
    ("shopify", Managed::By("Shopify")),
    ("slack", Managed::By("Slack")),
    ("yahoo", Managed::By("Yahoo")),
    ("yandex", Managed::By("Yandex")),
    ("vkontakte", Managed::By("VK")),
    ("weibo", Managed::By("Weibo")),
    ("baidu", Managed::By("Baidu")),
    ("discord", Managed::By("Discord")),
    ("evernote", Managed::By("Evernote")),
    ("wordpress", Managed::By("WordPress")),
    (
        "samlp",
        Managed::By("your organisation's SAML identity provider"),
    ),
    ("waad", Managed::By("Microsoft Entra ID (Azure AD)")),
    ("adfs", Managed::By("your organisation's ADFS")),
    ("ad", Managed::By("your organisation's Active Directory")),
    ("okta", Managed::By("Okta")),
    (
        "oidc",
        Managed::By("your organisation's OpenID Connect provider"),
    ),
    ("oauth2", Managed::By("the connection's OAuth 2.0 provider")),
    (
        "pingfederate",
        Managed::By("your organisation's PingFederate"),
    ),
    ("sharepoint", Managed::By("SharePoint")),
    ("ip", Managed::By("your organisation's network")),
    ("email", Managed::Passwordless),
    ("sms", Managed::Passwordless),
];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Managed {
    By(&'static str),
    Passwordless,
}

impl ConnectionPolicy {
    pub fn new(
        default: String,
        database: Vec<String>,
        identity_providers: Vec<(String, String)>,
    ) -> Self {
        ConnectionPolicy {
            default,
            database,
            identity_providers,
        }
    }

    pub fn default(&self) -> &str {
        &self.default
    }

    /// Resolves the requested connection (already trimmed; empty means absent) to the configured
    /// spelling of a database connection, or refuses it with a message the user can act on.
    pub fn resolve(&self, requested: Option<&str>) -> Result<&str, Rejection> {
        let requested = match requested {
            None | Some("") => return Ok(&self.default),
            Some(r) => r,
        };
        if let Some(d) = self
            .database
            .iter()
            .find(|d| crate::case::eq_ignore_case(d, requested))
        {
            return Ok(d);
        }
        if let Some((conn, display)) = self
            .identity_providers
            .iter()
            .find(|(c, _)| crate::case::eq_ignore_case(c, requested))
        {
            return Err(managed_elsewhere(conn, display));
        }
        if let Some((strategy, managed)) = WELL_KNOWN
            .iter()
            .find(|(s, _)| crate::case::eq_ignore_case(s, requested))
        {
            return Err(match managed {
                Managed::By(who) => managed_elsewhere(strategy, who),
                Managed::Passwordless => Rejection::bad_connection(format!(
                    "The connection `{strategy}` is passwordless: it signs users in with a one-time \
                     code, so there is no password to reset."
                )),
            });
        }
        Err(Rejection::bad_connection(format!(
            "The connection `{}` is not a database connection, so its passwords cannot be reset here. \
             Use the sign-in method you signed up with.",
            printable(requested)
        )))
    }
}

fn managed_elsewhere(conn: &str, who: &str) -> Rejection {
    Rejection::bad_connection(format!(
        "The password for the connection `{conn}` is managed by {who}: reset it there, \
         not with this form."
    ))
}

/// Echoes a client-supplied name back only when it is short and plain, so a reply never carries
/// markup or a long attacker-chosen string.
fn printable(s: &str) -> &str {
    let plain = s.len() <= 64
        && s.chars()
            .all(|c| c.is_alphanumeric() || matches!(c, '-' | '_' | '.' | ' '));
    if plain {
        s
    } else {
        "requested"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy() -> ConnectionPolicy {
        ConnectionPolicy::new(
            "Username-Password-Authentication".into(),
            vec!["Username-Password-Authentication".into(), "Staff-DB".into()],
            vec![("acme-saml".into(), "Acme single sign-on".into())],
        )
    }

    fn refusal(requested: &str) -> String {
        let e = policy().resolve(Some(requested)).unwrap_err();
        assert_eq!(e.status, 400);
        assert_eq!(e.code, "bad.connection");
        e.description
    }

    #[test]
    fn absent_or_empty_connection_is_the_default() {
        assert_eq!(
            policy().resolve(None).unwrap(),
            "Username-Password-Authentication"
        );
        assert_eq!(
            policy().resolve(Some("")).unwrap(),
            "Username-Password-Authentication"
        );
    }

    #[test]
    fn database_connections_match_case_insensitively_and_take_the_configured_spelling() {
        assert_eq!(
            policy()
                .resolve(Some("username-password-authentication"))
                .unwrap(),
            "Username-Password-Authentication"
        );
        assert_eq!(policy().resolve(Some("STAFF-db")).unwrap(), "Staff-DB");
    }

    #[test]
    fn configured_identity_providers_are_named() {
        let d = refusal("ACME-SAML");
        assert!(d.contains("Acme single sign-on"), "{d}");
        assert!(d.contains("acme-saml"), "{d}");
    }

    #[test]
    fn well_known_social_and_enterprise_strategies_are_named() {
        for (conn, who) in [
            ("google-oauth2", "Google"),
            ("Google-OAuth2", "Google"),
            ("facebook", "Facebook"),
            ("github", "GitHub"),
            ("apple", "Apple"),
            ("windowslive", "Microsoft"),
            ("twitter", "Twitter"),
            ("linkedin", "LinkedIn"),
            ("samlp", "SAML"),
            ("waad", "Microsoft"),
            ("adfs", "ADFS"),
            ("okta", "Okta"),
            ("oidc", "OpenID Connect"),
        ] {
            let d = refusal(conn);
            assert!(d.contains(who), "{conn}: {d}");
            assert!(d.contains("reset it there"), "{conn}: {d}");
        }
    }

    #[test]
    fn passwordless_connections_have_no_password() {
        for conn in ["email", "sms", "SMS"] {
            let d = refusal(conn);
            assert!(d.contains("passwordless"), "{d}");
        }
    }

    #[test]
    fn unknown_connections_are_not_database_connections() {
        let d = refusal("my-custom-thing");
        assert!(
            d.contains("`my-custom-thing` is not a database connection"),
            "{d}"
        );
    }

    #[test]
    fn hostile_connection_names_are_not_echoed() {
        let d = refusal("<script>alert(1)</script>");
        assert!(!d.contains("<script>"), "{d}");
    }
}
