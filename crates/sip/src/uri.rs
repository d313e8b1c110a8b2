//! URIs: `sip:`/`sips:` parsed into parts (RFC 3261 §19.1), anything else kept as text.

use std::fmt;
use std::net::Ipv6Addr;

use crate::Error;
use crate::text::{Param, check_escapes, escape, find_param, is_unreserved, unescape};

/// A URI in a Request-Line or a header.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Uri {
    /// `sip:` or `sips:`.
    Sip(SipUri),
    /// Any other absolute URI (`tel:`, `urn:`, `mailto:`), kept as text: the grammar
    /// allows them, and it is the TU's call to answer 416 Unsupported URI Scheme.
    Other {
        /// The scheme, lower-cased.
        scheme: String,
        /// Everything after the colon, as received.
        rest: String,
    },
}

/// A `sip:` or `sips:` URI.
///
/// The user and password are stored decoded (the contact center routes on the user part:
/// `%2B81` and `+81` are the same number); parameters and URI headers are stored as
/// received, with their escapes checked.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct SipUri {
    /// `sips:` rather than `sip:`.
    pub secure: bool,
    /// The user part, decoded; never empty when present.
    pub user: Option<String>,
    /// The password (deprecated by RFC 3261, still parsed), decoded.
    pub password: Option<String>,
    /// Host name, IPv4 address or bracketed IPv6 reference.
    pub host: String,
    /// The port, when given.
    pub port: Option<u16>,
    /// `;name=value` parameters, escapes kept.
    pub params: Vec<Param>,
    /// `?name=value&…` headers, escapes kept.
    pub headers: Vec<(String, String)>,
}

impl Uri {
    /// Parses a URI (without angle brackets).
    pub fn parse(text: &str) -> Result<Self, Error> {
        parse_uri(text, "URI")
    }

    /// The SIP URI inside, if this is one.
    pub fn as_sip(&self) -> Option<&SipUri> {
        match self {
            Self::Sip(uri) => Some(uri),
            Self::Other { .. } => None,
        }
    }
}

impl SipUri {
    /// `sip:user@host[:port]`.
    pub fn new(user: Option<&str>, host: &str, port: Option<u16>) -> Self {
        Self {
            secure: false,
            user: user.map(str::to_owned),
            password: None,
            host: host.into(),
            port,
            params: Vec::new(),
            headers: Vec::new(),
        }
    }

    /// A parameter: `Some(None)` for a flag such as `lr`, `Some(Some(v))` for a value.
    pub fn param(&self, name: &str) -> Option<Option<&str>> {
        find_param(&self.params, name)
    }

    /// Whether this URI names a loose router (RFC 3261 §16.12.1.1).
    pub fn is_loose_router(&self) -> bool {
        self.param("lr").is_some()
    }
}

impl From<SipUri> for Uri {
    fn from(uri: SipUri) -> Self {
        Self::Sip(uri)
    }
}

/// Parses a URI, naming `field` in errors (`Request-URI`, `From`, …).
pub(crate) fn parse_uri(text: &str, field: &'static str) -> Result<Uri, Error> {
    let malformed = |detail| Error::Malformed { field, detail };
    let (scheme, rest) = text.split_once(':').ok_or(malformed("no scheme"))?;
    let mut scheme_chars = scheme.chars();
    let scheme_ok = scheme_chars.next().is_some_and(|c| c.is_ascii_alphabetic())
        && scheme_chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'));
    if !scheme_ok {
        return Err(malformed("bad scheme"));
    }
    let scheme = scheme.to_ascii_lowercase();
    match scheme.as_str() {
        "sip" => Ok(Uri::Sip(parse_sip(rest, false, field)?)),
        "sips" => Ok(Uri::Sip(parse_sip(rest, true, field)?)),
        _ => {
            let forbidden =
                |c: char| c.is_whitespace() || c.is_control() || matches!(c, '<' | '>' | '"');
            if rest.is_empty() || rest.chars().any(forbidden) {
                return Err(malformed("bad characters"));
            }
            check_escapes(rest, field)?;
            Ok(Uri::Other {
                scheme,
                rest: rest.into(),
            })
        }
    }
}

fn is_user_char(c: char) -> bool {
    is_unreserved(c) || matches!(c, '&' | '=' | '+' | '$' | ',' | ';' | '?' | '/')
}

fn is_password_char(c: char) -> bool {
    is_unreserved(c) || matches!(c, '&' | '=' | '+' | '$' | ',')
}

fn is_param_char(c: char) -> bool {
    is_unreserved(c) || matches!(c, '[' | ']' | '/' | ':' | '&' | '+' | '$' | '%')
}

fn is_header_char(c: char) -> bool {
    is_unreserved(c) || matches!(c, '[' | ']' | '/' | '?' | ':' | '+' | '$' | '%')
}

fn parse_sip(rest: &str, secure: bool, field: &'static str) -> Result<SipUri, Error> {
    let malformed = |detail| Error::Malformed { field, detail };
    // '@' cannot appear unescaped after the user part, so the first one ends it; splitting
    // there first keeps a '?' or ';' inside a telephone-subscriber user part intact.
    let (user, password, rest) = match rest.split_once('@') {
        Some((userinfo, rest)) => {
            let (user, password) = match userinfo.split_once(':') {
                Some((user, password)) => (user, Some(password)),
                None => (userinfo, None),
            };
            if user.is_empty() || !user.chars().all(|c| is_user_char(c) || c == '%') {
                return Err(malformed("bad user part"));
            }
            let user = unescape(user, field)?;
            let password = match password {
                Some(text) if text.chars().all(|c| is_password_char(c) || c == '%') => {
                    Some(unescape(text, field)?)
                }
                Some(_) => return Err(malformed("bad password")),
                None => None,
            };
            (Some(user), password, rest)
        }
        None => (None, None, rest),
    };
    let (rest, headers_text) = match rest.split_once('?') {
        Some((rest, headers)) => (rest, Some(headers)),
        None => (rest, None),
    };
    let mut pieces = rest.split(';');
    let hostport = pieces.next().unwrap_or_default();
    let (host, port) = split_hostport(hostport).ok_or(malformed("bad host or port"))?;
    let mut params = Vec::new();
    for piece in pieces {
        let (name, value) = match piece.split_once('=') {
            Some((name, value)) => (name, Some(value)),
            None => (piece, None),
        };
        let good = |text: &str| !text.is_empty() && text.chars().all(is_param_char);
        if !good(name) || value.is_some_and(|value| !good(value)) {
            return Err(malformed("bad URI parameter"));
        }
        check_escapes(piece, field)?;
        params.push(Param {
            name: name.into(),
            value: value.map(str::to_owned),
        });
    }
    let mut headers = Vec::new();
    if let Some(text) = headers_text {
        for piece in text.split('&') {
            let (name, value) = piece.split_once('=').ok_or(malformed("bad URI header"))?;
            let good = name.chars().all(is_header_char) && value.chars().all(is_header_char);
            if name.is_empty() || !good {
                return Err(malformed("bad URI header"));
            }
            check_escapes(piece, field)?;
            headers.push((name.into(), value.into()));
        }
    }
    Ok(SipUri {
        secure,
        user,
        password,
        host: host.into(),
        port,
        params,
        headers,
    })
}

/// Splits `host[:port]`, checking the host's characters and the port's range.
pub(crate) fn split_hostport(text: &str) -> Option<(&str, Option<u16>)> {
    let (host, port) = if text.starts_with('[') {
        let end = text.find(']')?;
        let (host, rest) = text.split_at(end + 1);
        let port = match rest {
            "" => None,
            _ => Some(rest.strip_prefix(':')?),
        };
        (host, port)
    } else {
        match text.split_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (text, None),
        }
    };
    if !is_host(host) {
        return None;
    }
    let port = match port {
        Some(digits) if !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()) => {
            Some(digits.parse::<u16>().ok()?)
        }
        Some(_) => return None,
        None => None,
    };
    Some((host, port))
}

/// A host name, an IPv4 address, or an IPv6 reference in brackets. Underscores are
/// accepted in names because real devices send them.
pub(crate) fn is_host(host: &str) -> bool {
    match host
        .strip_prefix('[')
        .and_then(|inner| inner.strip_suffix(']'))
    {
        Some(inner) => inner.parse::<Ipv6Addr>().is_ok(),
        None => {
            !host.is_empty()
                && !host.starts_with('.')
                && !host.contains("..")
                && host
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_'))
        }
    }
}

impl fmt::Display for Uri {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Sip(uri) => uri.fmt(f),
            Self::Other { scheme, rest } => write!(f, "{scheme}:{rest}"),
        }
    }
}

impl fmt::Display for SipUri {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(if self.secure { "sips:" } else { "sip:" })?;
        if let Some(user) = &self.user {
            f.write_str(&escape(user, is_user_char))?;
            if let Some(password) = &self.password {
                write!(f, ":{}", escape(password, is_password_char))?;
            }
            f.write_str("@")?;
        }
        f.write_str(&self.host)?;
        if let Some(port) = self.port {
            write!(f, ":{port}")?;
        }
        for param in &self.params {
            write!(f, ";{}", param.name)?;
            if let Some(value) = &param.value {
                write!(f, "={value}")?;
            }
        }
        for (index, (name, value)) in self.headers.iter().enumerate() {
            let separator = if index == 0 { '?' } else { '&' };
            write!(f, "{separator}{name}={value}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sip(text: &str) -> SipUri {
        match Uri::parse(text).unwrap() {
            Uri::Sip(uri) => uri,
            other => panic!("not sip: {other:?}"),
        }
    }

    #[test]
    fn parses_the_parts_and_prints_them_back() {
        let uri = sip("sip:%2B8131234:pw@Example.COM:5070;transport=tcp;lr?subject=hi&x=");
        assert_eq!(uri.user.as_deref(), Some("+8131234"));
        assert_eq!(uri.password.as_deref(), Some("pw"));
        assert_eq!((uri.host.as_str(), uri.port), ("Example.COM", Some(5070)));
        assert_eq!(uri.param("transport"), Some(Some("tcp")));
        assert!(uri.is_loose_router());
        assert_eq!(
            uri.headers,
            [("subject".into(), "hi".into()), ("x".into(), String::new())]
        );
        assert_eq!(
            uri.to_string(),
            "sip:+8131234:pw@Example.COM:5070;transport=tcp;lr?subject=hi&x="
        );
    }

    #[test]
    fn telephone_subscriber_users_keep_their_semicolons() {
        let uri = sip("sips:+1-555;isub=12;postd=pp@[2001:db8::1]:5061;user=phone");
        assert!(uri.secure);
        assert_eq!(uri.user.as_deref(), Some("+1-555;isub=12;postd=pp"));
        assert_eq!(uri.host, "[2001:db8::1]");
        assert_eq!(uri.param("user"), Some(Some("phone")));
    }

    #[test]
    fn users_are_escaped_on_print_only_where_needed() {
        let mut uri = SipUri::new(Some("a b@c:d"), "h", None);
        uri.params.push(Param::flag("lr"));
        assert_eq!(uri.to_string(), "sip:a%20b%40c%3Ad@h;lr");
        assert_eq!(Uri::parse(&uri.to_string()).unwrap(), Uri::Sip(uri));
    }

    #[test]
    fn other_schemes_are_kept_as_text() {
        assert_eq!(
            Uri::parse("TEL:+81-3-1234").unwrap(),
            Uri::Other {
                scheme: "tel".into(),
                rest: "+81-3-1234".into()
            }
        );
    }

    #[test]
    fn refuses_what_the_grammar_does_not_allow() {
        for bad in [
            "sip:",
            "sip:@host",
            "sip:user@",
            "sip:user@host:",
            "sip:user@host:99999",
            "sip:user@host:5o60",
            "sip:us er@host",
            "sip:user@ho st",
            "sip:user@[::1",
            "sip:user@[zz::1]",
            "sip:user@host;=x",
            "sip:user@host?nohvalue",
            "1sip:user@host",
            "nocolon",
            "tel:",
            "tel:a b",
        ] {
            assert!(Uri::parse(bad).is_err(), "{bad}");
        }
        assert_eq!(
            Uri::parse("sip:%zzuser@host"),
            Err(Error::BadEscape { field: "URI" })
        );
        assert_eq!(
            Uri::parse("sip:user@host;maddr=%4"),
            Err(Error::BadEscape { field: "URI" })
        );
    }
}
