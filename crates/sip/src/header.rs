//! Typed header values: Via, name-addr (From, To, Contact, Route, Record-Route), CSeq and
//! the authentication headers, each with its parser and printer.

use std::fmt;

use crate::Error;
use crate::message::{Method, Transport};
use crate::text::{
    Param, find_param, header_params, is_token, is_token_char, is_wsp, push_header_params,
    push_quoted, quoted, set_param, split_list,
};
use crate::uri::{Uri, parse_uri, split_hostport};

/// One Via value: how the request was sent and where responses go back.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Via {
    /// `UDP`, `TCP`, `TLS`, … as received (compare case-insensitively).
    pub transport: String,
    /// The sent-by host.
    pub host: String,
    /// The sent-by port, when given.
    pub port: Option<u16>,
    /// `branch`, `received`, `rport` and the rest.
    pub params: Vec<Param>,
}

impl Via {
    /// A Via for a request we send.
    pub fn new(transport: Transport, host: &str, port: Option<u16>, branch: &str) -> Self {
        Self {
            transport: transport.as_str().into(),
            host: host.into(),
            port,
            params: vec![Param::new("branch", branch)],
        }
    }

    /// The transaction's branch.
    pub fn branch(&self) -> Option<&str> {
        self.param("branch").flatten()
    }

    /// The `received` address a server added.
    pub fn received(&self) -> Option<&str> {
        self.param("received").flatten()
    }

    /// `None`: no rport; `Some(None)`: the client asks for it (RFC 3581);
    /// `Some(Some(port))`: a server filled it in.
    pub fn rport(&self) -> Option<Option<u16>> {
        self.param("rport")
            .map(|value| value.and_then(|port| port.parse().ok()))
    }

    /// A parameter: `Some(None)` for a flag, `Some(Some(v))` for a value.
    pub fn param(&self, name: &str) -> Option<Option<&str>> {
        find_param(&self.params, name)
    }

    /// Sets a parameter, keeping its position if present.
    pub fn set_param(&mut self, name: &str, value: Option<&str>) {
        set_param(&mut self.params, name, value);
    }

    /// `host[:port]`, the sent-by that transaction matching compares.
    pub fn sent_by(&self) -> String {
        match self.port {
            Some(port) => format!("{}:{port}", self.host),
            None => self.host.clone(),
        }
    }
}

/// A display name, a URI and header parameters: From, To, Contact, Route, Record-Route.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct NameAddr {
    /// The display name, unquoted.
    pub display_name: Option<String>,
    /// The address.
    pub uri: Uri,
    /// Header parameters after the address (`tag`, `expires`, `q`, …).
    pub params: Vec<Param>,
}

impl NameAddr {
    /// An address without a display name or parameters.
    pub fn new(uri: impl Into<Uri>) -> Self {
        Self {
            display_name: None,
            uri: uri.into(),
            params: Vec::new(),
        }
    }

    /// The `tag` parameter of a From or To.
    pub fn tag(&self) -> Option<&str> {
        find_param(&self.params, "tag").flatten()
    }

    /// Sets the `tag` parameter.
    pub fn set_tag(&mut self, tag: &str) {
        set_param(&mut self.params, "tag", Some(tag));
    }

    /// A parameter: `Some(None)` for a flag, `Some(Some(v))` for a value.
    pub fn param(&self, name: &str) -> Option<Option<&str>> {
        find_param(&self.params, name)
    }
}

/// One Contact value.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Contact {
    /// `*`, which only a REGISTER with `Expires: 0` may carry.
    Wildcard,
    /// An address.
    Address(NameAddr),
}

/// The CSeq header: a sequence number and the method it counts.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct CSeq {
    /// Below 2³¹ (RFC 3261 §8.1.1.5).
    pub seq: u32,
    /// The request's method.
    pub method: Method,
}

/// One `name=value` of an authentication header.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct AuthParam {
    /// The parameter name.
    pub name: String,
    /// The value, unquoted.
    pub value: String,
    /// Whether it is (or is to be) written as a quoted string. Values that are not tokens
    /// are quoted regardless.
    pub quoted: bool,
}

/// An Authorization, Proxy-Authorization, WWW-Authenticate or Proxy-Authenticate value.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Auth {
    /// `Digest` in practice.
    pub scheme: String,
    /// The comma-separated parameters, in order.
    pub params: Vec<AuthParam>,
}

impl Auth {
    /// A parameter's value, by case-insensitive name.
    pub fn param(&self, name: &str) -> Option<&str> {
        self.params
            .iter()
            .find(|param| param.name.eq_ignore_ascii_case(name))
            .map(|param| param.value.as_str())
    }
}

pub(crate) fn parse_via(value: &str) -> Result<Via, Error> {
    let malformed = |detail| Error::Malformed {
        field: "Via",
        detail,
    };
    let mut parts = value.splitn(3, '/');
    let name = parts.next().unwrap_or_default().trim_matches(is_wsp);
    let version = parts.next().unwrap_or_default().trim_matches(is_wsp);
    let rest = parts
        .next()
        .ok_or(malformed("no protocol"))?
        .trim_start_matches(is_wsp);
    if !name.eq_ignore_ascii_case("SIP") || version != "2.0" {
        return Err(malformed("not SIP/2.0"));
    }
    let transport_end = rest.find(|c: char| !is_token_char(c)).unwrap_or(rest.len());
    let transport = &rest[..transport_end];
    if transport.is_empty() {
        return Err(malformed("no transport"));
    }
    let rest = rest[transport_end..].trim_start_matches(is_wsp);
    // sent-by is host [COLON port], and COLON may have white space around it.
    let host_end = if rest.starts_with('[') {
        rest.find(']').map_or(rest.len(), |end| end + 1)
    } else {
        rest.find(|c: char| is_wsp(c) || c == ':' || c == ';')
            .unwrap_or(rest.len())
    };
    let host = &rest[..host_end];
    let mut rest = rest[host_end..].trim_start_matches(is_wsp);
    let mut sent_by = host.to_owned();
    if let Some(after) = rest.strip_prefix(':') {
        let after = after.trim_start_matches(is_wsp);
        let digits = after
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(after.len());
        sent_by.push(':');
        sent_by.push_str(&after[..digits]);
        rest = &after[digits..];
    }
    let (host, port) = split_hostport(&sent_by).ok_or(malformed("bad sent-by"))?;
    let params = header_params(rest, "Via")?;
    if let Some(Some(port)) = find_param(&params, "rport")
        && port.parse::<u16>().is_err()
    {
        return Err(malformed("bad rport"));
    }
    Ok(Via {
        transport: transport.into(),
        host: host.into(),
        port,
        params,
    })
}

/// Parses a name-addr, or (where `field` allows it) an addr-spec without angle brackets.
pub(crate) fn parse_name_addr(
    value: &str,
    field: &'static str,
    allow_bare: bool,
) -> Result<NameAddr, Error> {
    let malformed = |detail| Error::Malformed { field, detail };
    let value = value.trim_matches(is_wsp);
    let (display_name, rest) = if value.starts_with('"') {
        let (name, rest) = quoted(value, field)?;
        (Some(name), rest.trim_start_matches(is_wsp))
    } else if let Some(open) = value.find('<') {
        let text = value[..open].trim_matches(is_wsp);
        let fits = |c: char| is_token_char(c) || is_wsp(c) || !c.is_ascii();
        if !text.chars().all(fits) {
            return Err(malformed("bad display name"));
        }
        // Unquoted display names are tokens separated by white space; keep one space.
        let name = text.split(is_wsp).filter(|word| !word.is_empty());
        let name = name.collect::<Vec<_>>().join(" ");
        ((!name.is_empty()).then_some(name), &value[open..])
    } else {
        (None, value)
    };
    if let Some(inner) = rest.strip_prefix('<') {
        let close = inner.find('>').ok_or(malformed("unclosed angle bracket"))?;
        let uri = parse_uri(&inner[..close], field)?;
        let params = header_params(&inner[close + 1..], field)?;
        return Ok(NameAddr {
            display_name,
            uri,
            params,
        });
    }
    if display_name.is_some() || !allow_bare {
        return Err(malformed("expected <URI>"));
    }
    // Without brackets, the URI ends at the first ';': what follows belongs to the header.
    let end = rest.find(';').unwrap_or(rest.len());
    let uri_text = rest[..end].trim_end_matches(is_wsp);
    if uri_text.contains(|c: char| is_wsp(c) || c == '?' || c == '>') {
        return Err(malformed("address needs angle brackets"));
    }
    Ok(NameAddr {
        display_name: None,
        uri: parse_uri(uri_text, field)?,
        params: header_params(&rest[end..], field)?,
    })
}

pub(crate) fn parse_contacts(value: &str) -> Result<Vec<Contact>, Error> {
    if value.trim_matches(is_wsp) == "*" {
        return Ok(vec![Contact::Wildcard]);
    }
    split_list(value, "Contact")?
        .into_iter()
        .map(|part| parse_name_addr(part, "Contact", true).map(Contact::Address))
        .collect()
}

pub(crate) fn parse_cseq(value: &str) -> Result<CSeq, Error> {
    let malformed = |detail| Error::Malformed {
        field: "CSeq",
        detail,
    };
    let value = value.trim_matches(is_wsp);
    let (number, method) = value.split_once(is_wsp).ok_or(malformed("no method"))?;
    if number.is_empty() || !number.bytes().all(|b| b.is_ascii_digit()) {
        return Err(malformed("sequence number is not a number"));
    }
    let seq = number
        .parse::<u32>()
        .ok()
        .filter(|seq| *seq < 1 << 31)
        .ok_or(malformed("sequence number out of range"))?;
    let method = Method::parse(method.trim_matches(is_wsp)).map_err(|_| malformed("bad method"))?;
    Ok(CSeq { seq, method })
}

pub(crate) fn parse_auth(value: &str, field: &'static str) -> Result<Auth, Error> {
    let malformed = |detail| Error::Malformed { field, detail };
    let value = value.trim_matches(is_wsp);
    let (scheme, rest) = value.split_once(is_wsp).ok_or(malformed("no parameters"))?;
    if !is_token(scheme) {
        return Err(malformed("bad scheme"));
    }
    let mut params = Vec::new();
    for part in split_list(rest, field)? {
        let (name, value) = part
            .split_once('=')
            .ok_or(malformed("parameter without value"))?;
        let name = name.trim_matches(is_wsp);
        let value = value.trim_matches(is_wsp);
        if !is_token(name) {
            return Err(malformed("bad parameter name"));
        }
        let (value, quoted_value) = if value.starts_with('"') {
            let (text, rest) = quoted(value, field)?;
            if !rest.trim_matches(is_wsp).is_empty() {
                return Err(malformed("text after a quoted value"));
            }
            (text, true)
        } else if is_token(value) {
            (value.to_owned(), false)
        } else {
            return Err(malformed("bad parameter value"));
        };
        params.push(AuthParam {
            name: name.into(),
            value,
            quoted: quoted_value,
        });
    }
    Ok(Auth {
        scheme: scheme.into(),
        params,
    })
}

impl fmt::Display for Via {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut out = format!("SIP/2.0/{} {}", self.transport, self.sent_by());
        push_header_params(&mut out, &self.params);
        f.write_str(&out)
    }
}

impl fmt::Display for NameAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut out = String::new();
        if let Some(name) = &self.display_name {
            push_quoted(&mut out, name);
            out.push(' ');
        }
        out.push('<');
        out.push_str(&self.uri.to_string());
        out.push('>');
        push_header_params(&mut out, &self.params);
        f.write_str(&out)
    }
}

impl fmt::Display for Contact {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Wildcard => f.write_str("*"),
            Self::Address(address) => address.fmt(f),
        }
    }
}

impl fmt::Display for CSeq {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.seq, self.method)
    }
}

impl fmt::Display for Auth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut out = self.scheme.clone();
        for (index, param) in self.params.iter().enumerate() {
            out.push_str(if index == 0 { " " } else { ", " });
            out.push_str(&param.name);
            out.push('=');
            if param.quoted || !is_token(&param.value) {
                push_quoted(&mut out, &param.value);
            } else {
                out.push_str(&param.value);
            }
        }
        f.write_str(&out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn via_allows_white_space_around_its_separators() {
        let via =
            parse_via("SIP / 2.0 / UDP  host.example : 5070 ;branch=z9hG4bK1 ;rport").unwrap();
        assert_eq!(via.transport, "UDP");
        assert_eq!(via.sent_by(), "host.example:5070");
        assert_eq!(via.branch(), Some("z9hG4bK1"));
        assert_eq!(via.rport(), Some(None));
        assert_eq!(
            via.to_string(),
            "SIP/2.0/UDP host.example:5070;branch=z9hG4bK1;rport"
        );
        let via = parse_via("SIP/2.0/TCP [2001:db8::9];received=[2001:db8::1];rport=5061").unwrap();
        assert_eq!((via.host.as_str(), via.port), ("[2001:db8::9]", None));
        assert_eq!(via.received(), Some("[2001:db8::1]"));
        assert_eq!(via.rport(), Some(Some(5061)));
        for bad in [
            "SIP/3.0/UDP h",
            "SIP/2.0/ h",
            "SIP/2.0/UDP",
            "SIP/2.0/UDP h:x",
            "SIP/2.0/UDP h junk",
            "SIP/2.0/UDP h;rport=99999",
        ] {
            assert!(parse_via(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn name_addrs_take_quoted_unquoted_and_bare_forms() {
        let from =
            parse_name_addr(r#""Bob \"B\"" <sip:bob@b.example>;tag=9"#, "From", true).unwrap();
        assert_eq!(from.display_name.as_deref(), Some(r#"Bob "B""#));
        assert_eq!(from.tag(), Some("9"));
        let to = parse_name_addr("Anonymous   User<sip:x@y>", "To", true).unwrap();
        assert_eq!(to.display_name.as_deref(), Some("Anonymous User"));
        let bare = parse_name_addr("sip:a@b;tag=1", "To", true).unwrap();
        assert_eq!(bare.uri.to_string(), "sip:a@b");
        assert_eq!(bare.tag(), Some("1"));
        assert_eq!(bare.to_string(), "<sip:a@b>;tag=1");
        assert!(parse_name_addr("sip:a@b", "Route", false).is_err());
        assert!(parse_name_addr("<sip:a@b", "To", true).is_err());
        assert!(parse_name_addr("Bob sip:a@b", "To", true).is_err());
        assert!(parse_name_addr("\"Bob <sip:a@b>", "To", true).is_err());
    }

    #[test]
    fn contacts_are_a_list_or_a_star() {
        let contacts = parse_contacts(r#"<sip:a@b>;expires=60, "x,y" <sip:c@d>"#).unwrap();
        assert_eq!(contacts.len(), 2);
        assert_eq!(parse_contacts(" * ").unwrap(), [Contact::Wildcard]);
    }

    #[test]
    fn cseq_numbers_stay_below_two_to_the_31() {
        let cseq = parse_cseq("  42   INVITE ").unwrap();
        assert_eq!((cseq.seq, cseq.method), (42, Method::Invite));
        assert!(parse_cseq("2147483647 BYE").is_ok());
        for bad in [
            "2147483648 BYE",
            "-1 BYE",
            "1",
            "x BYE",
            "1 B@D",
            "36893488147419103232 BYE",
        ] {
            assert!(parse_cseq(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn auth_headers_keep_quoting() {
        let text = r#"Digest username="a b", realm="r", nonce="n", uri="sip:x", response="0f", qop=auth, nc=00000001, cnonce="c""#;
        let auth = parse_auth(text, "Authorization").unwrap();
        assert_eq!(auth.param("USERNAME"), Some("a b"));
        assert_eq!(auth.param("qop"), Some("auth"));
        assert_eq!(auth.to_string(), text);
        assert!(parse_auth("Digest", "Authorization").is_err());
        assert!(parse_auth("Digest realm", "Authorization").is_err());
        assert!(parse_auth(r#"Digest realm="r" x"#, "Authorization").is_err());
    }
}
