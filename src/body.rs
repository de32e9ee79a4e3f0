//! Reading the request body: the media type, then the fields the filter uses, from a JSON object
//! or a form.
//!
//! The JSON reader is a small single-pass scanner instead of a tree parser: unused values
//! (Lock iOS sends `device`, apps add custom keys) are checked for well-formedness and skipped
//! with an explicit bracket stack, so a deeply nested or huge unused value costs no more than its
//! bytes and can never exhaust the wasm stack.

use crate::reply::Rejection;

/// The two body encodings clients use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyKind {
    Json,
    Form,
}

/// Decides the body encoding from the `Content-Type` header.
pub fn body_kind(content_type: Option<&str>) -> Result<BodyKind, Rejection> {
    let Some(ct) = content_type else {
        return Err(Rejection::unsupported_media_type(
            "The Content-Type header is missing: send application/json or application/x-www-form-urlencoded.",
        ));
    };
    let mut parts = ct.split(';');
    let media = parts.next().unwrap_or("").trim();
    let kind = if media.eq_ignore_ascii_case("application/json") {
        BodyKind::Json
    } else if media.eq_ignore_ascii_case("application/x-www-form-urlencoded") {
        BodyKind::Form
    } else {
        return Err(Rejection::unsupported_media_type(
            "The Content-Type must be application/json or application/x-www-form-urlencoded.",
        ));
    };
    for param in parts {
        let Some((name, value)) = param.split_once('=') else {
            continue;
        };
        if name.trim().eq_ignore_ascii_case("charset") {
            let value = value.trim().trim_matches('"');
            if !value.eq_ignore_ascii_case("utf-8") && !value.eq_ignore_ascii_case("utf8") {
                return Err(Rejection::unsupported_media_type(
                    "The Content-Type charset must be UTF-8.",
                ));
            }
        }
    }
    Ok(kind)
}

/// The fields the filter uses, as sent (before trimming and normalisation).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Fields {
    pub client_id: Option<String>,
    pub email: Option<String>,
    pub username: Option<String>,
    pub connection: Option<String>,
    pub organization: Option<String>,
    pub captcha: Option<String>,
    pub state: Option<String>,
}

/// Byte limits per used field. `captcha` holds reCAPTCHA/hCaptcha tokens from auth0.js, which
/// run to a few kilobytes, so it is allowed more than the other short identifiers.
fn max_len(field: &str) -> usize {
    match field {
        "email" | "username" => 254,
        "captcha" => 4096,
        _ => 128,
    }
}

impl Fields {
    fn slot(&mut self, key: &str) -> Option<&mut Option<String>> {
        Some(match key {
            "client_id" => &mut self.client_id,
            "email" => &mut self.email,
            "username" => &mut self.username,
            "connection" => &mut self.connection,
            "organization" => &mut self.organization,
            "captcha" => &mut self.captcha,
            "state" => &mut self.state,
            _ => return None,
        })
    }

    fn is_used(key: &str) -> bool {
        Fields::default().slot(key).is_some()
    }

    /// Stores a used field after checking its content rules. Fields that normalisation trims
    /// (`email`, `username`, `connection`) may carry surrounding whitespace such as a tab or a
    /// newline; control characters inside them, or anywhere in the other fields, are refused.
    fn set(&mut self, key: &str, value: String) -> Result<(), Rejection> {
        let checked = match key {
            "email" | "username" | "connection" => value.trim(),
            _ => value.as_str(),
        };
        if checked.chars().any(char::is_control) {
            return Err(Rejection::invalid(format!(
                "The {key} field contains a control character, which is not allowed."
            )));
        }
        let max = max_len(key);
        if value.len() > max {
            return Err(Rejection::invalid(format!(
                "The {key} field is longer than the {max} bytes allowed."
            )));
        }
        if let Some(slot) = self.slot(key) {
            *slot = Some(value);
        }
        Ok(())
    }
}

/// Parses a body of the given kind into the used fields.
pub fn parse(kind: BodyKind, body: &[u8]) -> Result<Fields, Rejection> {
    match kind {
        BodyKind::Json => parse_json(body),
        BodyKind::Form => parse_form(body),
    }
}

fn duplicate(key: &str) -> Rejection {
    let shown = if key.len() <= 64 && !key.chars().any(char::is_control) {
        key
    } else {
        "a key"
    };
    Rejection::invalid(format!(
        "The field {shown} appears more than once in the body; send each field once."
    ))
}

/// Refuses a body that repeats a key. Keys are compared after decoding, so `em\u0061il` and
/// `email` are the same key, as the provider would see them.
fn check_duplicates(mut keys: Vec<Vec<u8>>) -> Result<(), Rejection> {
    keys.sort_unstable();
    for pair in keys.windows(2) {
        if pair[0] == pair[1] {
            return Err(duplicate(&String::from_utf8_lossy(&pair[0])));
        }
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// JSON

fn malformed_json(detail: &str) -> Rejection {
    Rejection::invalid(format!(
        "The body is not a valid JSON object ({detail}); send the fields as one JSON object."
    ))
}

struct Scanner<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> Scanner<'a> {
    fn peek(&self) -> Option<u8> {
        self.bytes.get(self.pos).copied()
    }

    fn skip_ws(&mut self) {
        while let Some(b' ' | b'\t' | b'\n' | b'\r') = self.peek() {
            self.pos += 1;
        }
    }

    fn consume(&mut self, b: u8, what: &str) -> Result<(), Rejection> {
        self.skip_ws();
        if self.peek() == Some(b) {
            self.pos += 1;
            Ok(())
        } else {
            Err(malformed_json(what))
        }
    }

    fn hex4(&mut self) -> Result<u32, Rejection> {
        let digits = self
            .bytes
            .get(self.pos..self.pos + 4)
            .ok_or_else(|| malformed_json("a \\u escape is cut short"))?;
        let mut v = 0u32;
        for &d in digits {
            let n = (d as char)
                .to_digit(16)
                .ok_or_else(|| malformed_json("a \\u escape has a non-hex digit"))?;
            v = v * 16 + n;
        }
        self.pos += 4;
        Ok(v)
    }

    /// Reads a string starting at its opening quote. With `out` it decodes into it; without, it
    /// only validates. The input is already known to be UTF-8.
    fn string(&mut self, mut out: Option<&mut String>) -> Result<(), Rejection> {
        self.pos += 1; // opening quote
        loop {
            let start = self.pos;
            while let Some(b) = self.peek() {
                if b == b'"' || b == b'\\' || b < 0x20 {
                    break;
                }
                self.pos += 1;
            }
            if let Some(o) = out.as_deref_mut() {
                // Slicing at ASCII delimiters keeps UTF-8 boundaries intact.
                o.push_str(&String::from_utf8_lossy(&self.bytes[start..self.pos]));
            }
            match self.peek() {
                None => return Err(malformed_json("a string is not closed")),
                Some(b'"') => {
                    self.pos += 1;
                    return Ok(());
                }
                Some(b'\\') => {
                    self.pos += 1;
                    let esc = self
                        .peek()
                        .ok_or_else(|| malformed_json("a string is not closed"))?;
                    self.pos += 1;
                    let c = match esc {
                        b'"' => '"',
                        b'\\' => '\\',
                        b'/' => '/',
                        b'b' => '\u{8}',
                        b'f' => '\u{c}',
                        b'n' => '\n',
                        b'r' => '\r',
                        b't' => '\t',
                        b'u' => self.unicode_escape()?,
                        _ => return Err(malformed_json("a string has an unknown escape")),
                    };
                    if let Some(o) = out.as_deref_mut() {
                        o.push(c);
                    }
                }
                Some(_) => {
                    return Err(malformed_json(
                        "a string holds a raw control character; escape it",
                    ))
                }
            }
        }
    }

    fn unicode_escape(&mut self) -> Result<char, Rejection> {
        let hi = self.hex4()?;
        let code = if (0xD800..0xDC00).contains(&hi) {
            if self.bytes.get(self.pos..self.pos + 2) != Some(b"\\u") {
                return Err(malformed_json("a \\u escape is a lone surrogate"));
            }
            self.pos += 2;
            let lo = self.hex4()?;
            if !(0xDC00..0xE000).contains(&lo) {
                return Err(malformed_json("a \\u escape is a lone surrogate"));
            }
            0x10000 + ((hi - 0xD800) << 10) + (lo - 0xDC00)
        } else if (0xDC00..0xE000).contains(&hi) {
            return Err(malformed_json("a \\u escape is a lone surrogate"));
        } else {
            hi
        };
        char::from_u32(code).ok_or_else(|| malformed_json("a \\u escape is not a character"))
    }

    fn literal(&mut self, word: &[u8]) -> Result<(), Rejection> {
        if self.bytes.get(self.pos..self.pos + word.len()) == Some(word) {
            self.pos += word.len();
            Ok(())
        } else {
            Err(malformed_json("a value is not valid JSON"))
        }
    }

    fn number(&mut self) -> Result<(), Rejection> {
        let bad = || malformed_json("a number is not valid JSON");
        if self.peek() == Some(b'-') {
            self.pos += 1;
        }
        match self.peek() {
            Some(b'0') => self.pos += 1,
            Some(b'1'..=b'9') => self.digits(),
            _ => return Err(bad()),
        }
        if self.peek() == Some(b'.') {
            self.pos += 1;
            if !matches!(self.peek(), Some(b'0'..=b'9')) {
                return Err(bad());
            }
            self.digits();
        }
        if let Some(b'e' | b'E') = self.peek() {
            self.pos += 1;
            if let Some(b'+' | b'-') = self.peek() {
                self.pos += 1;
            }
            if !matches!(self.peek(), Some(b'0'..=b'9')) {
                return Err(bad());
            }
            self.digits();
        }
        Ok(())
    }

    fn digits(&mut self) {
        while let Some(b'0'..=b'9') = self.peek() {
            self.pos += 1;
        }
    }

    /// Validates and skips one value of any depth without recursion.
    fn skip_value(&mut self) -> Result<(), Rejection> {
        // The innermost open containers; `true` for an object. Bounded by the body's length.
        let mut stack: Vec<bool> = Vec::new();
        loop {
            self.skip_ws();
            // A value.
            match self.peek() {
                Some(b'"') => self.string(None)?,
                Some(b't') => self.literal(b"true")?,
                Some(b'f') => self.literal(b"false")?,
                Some(b'n') => self.literal(b"null")?,
                Some(b'-' | b'0'..=b'9') => self.number()?,
                Some(b'[') => {
                    self.pos += 1;
                    self.skip_ws();
                    if self.peek() == Some(b']') {
                        self.pos += 1;
                    } else {
                        stack.push(false);
                        continue;
                    }
                }
                Some(b'{') => {
                    self.pos += 1;
                    self.skip_ws();
                    if self.peek() == Some(b'}') {
                        self.pos += 1;
                    } else {
                        stack.push(true);
                        self.member_key()?;
                        continue;
                    }
                }
                _ => return Err(malformed_json("a value is missing or not valid JSON")),
            }
            // After a value: close containers or move to the next element.
            loop {
                let Some(&in_object) = stack.last() else {
                    return Ok(());
                };
                self.skip_ws();
                match (self.peek(), in_object) {
                    (Some(b','), false) => {
                        self.pos += 1;
                        break;
                    }
                    (Some(b','), true) => {
                        self.pos += 1;
                        self.skip_ws();
                        self.member_key()?;
                        break;
                    }
                    (Some(b']'), false) | (Some(b'}'), true) => {
                        self.pos += 1;
                        stack.pop();
                    }
                    _ => return Err(malformed_json("a list or object is not closed properly")),
                }
            }
        }
    }

    /// Inside a nested object: a key and its colon.
    fn member_key(&mut self) -> Result<(), Rejection> {
        if self.peek() != Some(b'"') {
            return Err(malformed_json("an object key must be a string"));
        }
        self.string(None)?;
        self.consume(b':', "a key is not followed by `:`")
    }
}

fn parse_json(body: &[u8]) -> Result<Fields, Rejection> {
    if std::str::from_utf8(body).is_err() {
        return Err(Rejection::invalid(
            "The body is not valid UTF-8 text; send it encoded as UTF-8.",
        ));
    }
    let mut s = Scanner {
        bytes: body,
        pos: 0,
    };
    s.skip_ws();
    if s.peek() != Some(b'{') {
        return Err(malformed_json("it must start with `{`"));
    }
    s.pos += 1;
    let mut fields = Fields::default();
    let mut keys: Vec<Vec<u8>> = Vec::new();
    s.skip_ws();
    if s.peek() == Some(b'}') {
        s.pos += 1;
    } else {
        loop {
            s.skip_ws();
            if s.peek() != Some(b'"') {
                return Err(malformed_json("an object key must be a string"));
            }
            let mut key = String::new();
            s.string(Some(&mut key))?;
            s.consume(b':', "a key is not followed by `:`")?;
            s.skip_ws();
            if Fields::is_used(&key) {
                if s.peek() != Some(b'"') {
                    // A well-formed value of the wrong type names the field; anything else is
                    // broken JSON.
                    s.skip_value()?;
                    return Err(Rejection::invalid(format!(
                        "The {key} field must be a string."
                    )));
                }
                let mut value = String::new();
                s.string(Some(&mut value))?;
                fields.set(&key, value)?;
            } else {
                s.skip_value()?;
            }
            keys.push(key.into_bytes());
            s.skip_ws();
            match s.peek() {
                Some(b',') => s.pos += 1,
                Some(b'}') => {
                    s.pos += 1;
                    break;
                }
                _ => return Err(malformed_json("members must be separated by `,`")),
            }
        }
    }
    s.skip_ws();
    if s.pos != body.len() {
        return Err(malformed_json("there is text after the object"));
    }
    check_duplicates(keys)?;
    Ok(fields)
}

// ---------------------------------------------------------------------------------------------
// Forms

/// Decodes `application/x-www-form-urlencoded` bytes: `+` is a space, `%XX` a byte.
fn percent_decode(raw: &[u8]) -> Result<Vec<u8>, Rejection> {
    let mut out = Vec::with_capacity(raw.len());
    let mut i = 0;
    while i < raw.len() {
        match raw[i] {
            b'+' => out.push(b' '),
            b'%' => {
                let hex = raw
                    .get(i + 1..i + 3)
                    .and_then(|h| std::str::from_utf8(h).ok())
                    .and_then(|h| u8::from_str_radix(h, 16).ok())
                    .ok_or_else(|| {
                        Rejection::invalid(
                            "The form body has a broken %-escape; encode it as application/x-www-form-urlencoded.",
                        )
                    })?;
                out.push(hex);
                i += 2;
            }
            b => out.push(b),
        }
        i += 1;
    }
    Ok(out)
}

fn parse_form(body: &[u8]) -> Result<Fields, Rejection> {
    let mut fields = Fields::default();
    let mut keys = Vec::new();
    for pair in body.split(|&b| b == b'&') {
        if pair.is_empty() {
            continue;
        }
        let (raw_key, raw_value) = match pair.iter().position(|&b| b == b'=') {
            Some(i) => (&pair[..i], &pair[i + 1..]),
            None => (pair, &b""[..]),
        };
        let key = percent_decode(raw_key)?;
        if let Ok(k) = std::str::from_utf8(&key) {
            if Fields::is_used(k) {
                let value = String::from_utf8(percent_decode(raw_value)?).map_err(|_| {
                    Rejection::invalid(format!("The {k} field is not valid UTF-8 text."))
                })?;
                fields.set(k, value)?;
            }
        }
        keys.push(key);
    }
    check_duplicates(keys)?;
    Ok(fields)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn json(s: &str) -> Result<Fields, Rejection> {
        parse(BodyKind::Json, s.as_bytes())
    }

    fn form(s: &str) -> Result<Fields, Rejection> {
        parse(BodyKind::Form, s.as_bytes())
    }

    fn invalid(r: Result<Fields, Rejection>) -> String {
        let e = r.unwrap_err();
        assert_eq!(e.status, 400, "{e:?}");
        assert_eq!(e.code, "invalid_request");
        e.description
    }

    #[test]
    fn content_types() {
        assert_eq!(body_kind(Some("application/json")).unwrap(), BodyKind::Json);
        assert_eq!(
            body_kind(Some("Application/JSON; charset=UTF-8")).unwrap(),
            BodyKind::Json
        );
        assert_eq!(
            body_kind(Some("application/json;charset=\"utf-8\"")).unwrap(),
            BodyKind::Json
        );
        assert_eq!(
            body_kind(Some("application/x-www-form-urlencoded; charset=utf-8")).unwrap(),
            BodyKind::Form
        );
        for bad in [
            None,
            Some(""),
            Some("text/plain"),
            Some("application/json; charset=iso-8859-1"),
            Some("application/x-www-form-urlencoded; charset=latin1"),
            Some("multipart/form-data; boundary=x"),
            Some("application/jsonx"),
        ] {
            let e = body_kind(bad).unwrap_err();
            assert_eq!(e.status, 415, "{bad:?}");
            assert!(e.description.contains("Content-Type"));
        }
    }

    #[test]
    fn lock_ios_v1_body_keeps_only_used_fields() {
        let f = json(
            r#"{"email":"jane@example.com","client_id":"abc","connection":"Username-Password-Authentication",
                "scope":"openid offline_access","device":"Ana’s iPhone 📱","state":"s1","nonce":"n",
                "protocol":"oauth2","connection_scope":["a","b"],"custom":{"deep":[1,2,{"x":null}]}}"#,
        )
        .unwrap();
        assert_eq!(f.email.as_deref(), Some("jane@example.com"));
        assert_eq!(f.client_id.as_deref(), Some("abc"));
        assert_eq!(
            f.connection.as_deref(),
            Some("Username-Password-Authentication")
        );
        assert_eq!(f.state.as_deref(), Some("s1"));
        assert_eq!(f.organization, None);
    }

    #[test]
    fn json_escapes_are_decoded() {
        let f = json(
            r#"{"email":"j\u0061ne@ex\u00e4mple.com","state":"a\/b\"c","captcha":"\ud83d\ude00"}"#,
        )
        .unwrap();
        assert_eq!(f.email.as_deref(), Some("jane@exämple.com"));
        assert_eq!(f.state.as_deref(), Some("a/b\"c"));
        assert_eq!(f.captcha.as_deref(), Some("😀"));
    }

    #[test]
    fn json_must_be_one_object() {
        for bad in [
            "",
            "[]",
            "\"x\"",
            "null",
            "{",
            "{\"email\":\"a@b.c\"",
            "{\"email\":\"a@b.c\"}x",
            "{\"email\":\"a@b.c\"}{}",
            "{email:\"a@b.c\"}",
            "{\"email\" \"a@b.c\"}",
            "{\"a\":1,}",
            "{\"a\":[1,]}",
            "{\"a\":01}",
            "{\"a\":1.}",
            "{\"a\":tru}",
            "{\"a\":{\"b\"}}",
            "{\"a\":\"\\x\"}",
            "{\"a\":\"\\ud800\"}",
            "{\"a\":\"\\udc00x\"}",
            "{\"a\":[}",
            "{\"a\":{]}",
            "{\"email\":",
            "{\"email\":}",
            "{\"email\":x}",
        ] {
            let d = invalid(json(bad));
            assert!(d.contains("JSON"), "{bad}: {d}");
        }
    }

    #[test]
    fn used_fields_must_be_strings() {
        for v in ["1", "null", "true", "[\"a@b.c\"]", "{}"] {
            let d = invalid(json(&format!("{{\"email\":{v}}}")));
            assert!(d.contains("email") && d.contains("string"), "{d}");
        }
        let d = invalid(json("{\"client_id\":5}"));
        assert!(d.contains("client_id"), "{d}");
    }

    #[test]
    fn unused_fields_may_have_any_type() {
        let f = json(
            r#"{"password":12,"device":null,"x":[true,false,-1.5e3,{"y":[]}],"email":"a@b.co"}"#,
        )
        .unwrap();
        assert_eq!(f.email.as_deref(), Some("a@b.co"));
    }

    #[test]
    fn duplicate_keys_are_refused() {
        let d = invalid(json(r#"{"email":"a@b.co","email":"c@d.co"}"#));
        assert!(d.contains("email") && d.contains("more than once"), "{d}");
        let d = invalid(json(r#"{"email":"a@b.co","em\u0061il":"a@b.co"}"#));
        assert!(d.contains("more than once"), "{d}");
        invalid(json(r#"{"x":1,"x":2}"#));
        let d = invalid(form("email=a%40b.co&email=c%40d.co"));
        assert!(d.contains("more than once"), "{d}");
    }

    #[test]
    fn control_characters_in_used_fields_are_refused() {
        for v in ["a\\u0000b", "a\\nb", "a\\u007fb", "a\\u0085b"] {
            let d = invalid(json(&format!("{{\"connection\":\"{v}\"}}")));
            assert!(
                d.contains("connection") && d.contains("control"),
                "{v}: {d}"
            );
        }
        let d = invalid(form("email=a%00%40b.co"));
        assert!(d.contains("email") && d.contains("control"), "{d}");
        // Surrounding whitespace of trimmed fields is not a rule break; inside it is.
        let f = json("{\"email\":\" \\t a@b.co \\r\\n\",\"connection\":\"\\tStaff\\n\"}").unwrap();
        assert_eq!(f.email.as_deref(), Some(" \t a@b.co \r\n"));
        invalid(json("{\"email\":\"a\\t@b.co\"}"));
        invalid(json("{\"client_id\":\"\\tabc\"}"));
        invalid(json("{\"state\":\"abc\\n\"}"));
        // Unused fields may hold anything JSON allows.
        assert!(json("{\"device\":\"a\\u0000b\"}").is_ok());
        // A raw (unescaped) control character is not JSON at all.
        invalid(json("{\"device\":\"a\u{1}b\"}"));
    }

    #[test]
    fn invalid_utf8_is_refused() {
        let d = invalid(parse(BodyKind::Json, b"{\"email\":\"a\xff@b.co\"}"));
        assert!(d.contains("UTF-8"), "{d}");
        invalid(parse(BodyKind::Json, b"{\"device\":\"\xc3\"}"));
        let d = invalid(form("email=a%FF%40b.co"));
        assert!(d.contains("email") && d.contains("UTF-8"), "{d}");
        // Unused form fields are not decoded.
        assert!(form("device=%FF&email=a%40b.co").is_ok());
    }

    #[test]
    fn over_long_fields_are_refused() {
        let email = format!("{}@example.com", "a".repeat(255 - 12));
        assert_eq!(email.len(), 255);
        let d = invalid(json(&format!("{{\"email\":\"{email}\"}}")));
        assert!(d.contains("email") && d.contains("254"), "{d}");
        let ok = format!("{}@example.com", "a".repeat(254 - 12));
        assert!(json(&format!("{{\"email\":\"{ok}\"}}")).is_ok());
        let d = invalid(json(&format!("{{\"connection\":\"{}\"}}", "c".repeat(129))));
        assert!(d.contains("connection") && d.contains("128"), "{d}");
        assert!(json(&format!("{{\"connection\":\"{}\"}}", "c".repeat(128))).is_ok());
        invalid(json(&format!("{{\"state\":\"{}\"}}", "s".repeat(129))));
        invalid(json(&format!("{{\"client_id\":\"{}\"}}", "s".repeat(129))));
        invalid(json(&format!(
            "{{\"organization\":\"{}\"}}",
            "s".repeat(129)
        )));
        assert!(json(&format!("{{\"captcha\":\"{}\"}}", "t".repeat(2000))).is_ok());
        invalid(json(&format!("{{\"captcha\":\"{}\"}}", "t".repeat(4097))));
    }

    #[test]
    fn deep_nesting_costs_only_its_bytes() {
        let deep = format!(
            "{{\"x\":{}{},\"email\":\"a@b.co\"}}",
            "[".repeat(4000),
            "]".repeat(4000)
        );
        assert_eq!(json(&deep).unwrap().email.as_deref(), Some("a@b.co"));
        let deep_obj = format!("{{\"x\":{}1{}}}", "{\"a\":".repeat(2000), "}".repeat(2000));
        assert!(json(&deep_obj).is_ok());
        invalid(json(&format!("{{\"x\":{}}}", "[".repeat(4000))));
    }

    #[test]
    fn form_bodies_are_decoded() {
        let f = form("client_id=abc&connection=Username-Password-Authentication&email=Jane%2BX%40Example.com&password=hunter2&tenant=t&username=jane+doe").unwrap();
        assert_eq!(f.email.as_deref(), Some("Jane+X@Example.com"));
        assert_eq!(f.username.as_deref(), Some("jane doe"));
        assert_eq!(f.client_id.as_deref(), Some("abc"));
        let f = form("&&email=a%40b.co&flag&").unwrap();
        assert_eq!(f.email.as_deref(), Some("a@b.co"));
        invalid(form("email=a%4"));
        invalid(form("email=a%zz"));
    }

    #[test]
    fn whitespace_around_json_is_fine() {
        assert!(json(" \n{ \"email\" : \"a@b.co\" }\r\n ").is_ok());
        assert_eq!(json("{}").unwrap(), Fields::default());
    }
}
