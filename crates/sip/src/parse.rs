//! Bytes to [`Message`]: framing, line unfolding, compact names, header dispatch, and
//! the checks RFC 3261 §7 and §18.3 ask for. Refusals name what was wrong (see
//! [`Error::reason`]) and [`refusal`] turns them into a response.

use std::borrow::Cow;

use crate::Error;
use crate::header::{
    CSeq, NameAddr, parse_auth, parse_contacts, parse_cseq, parse_name_addr, parse_via,
};
use crate::message::{Headers, Message, Method, Request, Response, Transport};
use crate::text::{has_control, is_token, is_wsp, split_list};
use crate::uri::{Uri, parse_uri};

/// Size limits for one message. Anything larger is refused rather than buffered, so a
/// peer cannot make the server hold arbitrary amounts of memory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// The whole message, head and body (default 65,535: the largest UDP payload).
    pub max_message: usize,
    /// One header after unfolding, name and value (default 8,192).
    pub max_header: usize,
    /// Header lines (default 256).
    pub max_headers: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_message: 65_535,
            max_header: 8_192,
            max_headers: 256,
        }
    }
}

/// What [`frame`] found at the start of a stream buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Frame {
    /// More bytes are needed.
    Incomplete,
    /// This many CR/LF bytes (a keep-alive, RFC 5626 §3.5.1) to drop before the next message.
    KeepAlive(usize),
    /// The first message is this many bytes long: pass them to [`parse`].
    Message(usize),
}

/// Parses one message with the default [`Limits`].
///
/// On UDP a missing Content-Length means the body runs to the end of the datagram and
/// bytes past a declared length are dropped (RFC 3261 §18.3); on a stream transport
/// Content-Length is mandatory and must match what [`frame`] cut out.
pub fn parse(bytes: &[u8], transport: Transport) -> Result<Message, Error> {
    parse_with(bytes, transport, &Limits::default())
}

/// Parses one message under the given limits.
pub fn parse_with(bytes: &[u8], transport: Transport, limits: &Limits) -> Result<Message, Error> {
    if bytes.len() > limits.max_message {
        return Err(Error::TooLarge {
            len: bytes.len(),
            limit: limits.max_message,
        });
    }
    // Line breaks before the start line are ignored (RFC 3261 §7.5).
    let bytes = &bytes[leading_line_breaks(bytes)..];
    if bytes.is_empty() {
        return Err(Error::Empty);
    }
    let (head_end, body_start) = find_head_end(bytes).ok_or(Error::Unterminated)?;
    let head = std::str::from_utf8(&bytes[..head_end]).map_err(|error| Error::NotUtf8 {
        offset: error.valid_up_to(),
    })?;
    let (start_line, lines) = logical_lines(head);
    let start = parse_start_line(start_line)?;
    if lines.len() > limits.max_headers {
        return Err(Error::TooManyHeaders {
            limit: limits.max_headers,
        });
    }
    let mut draft = Draft::default();
    for line in &lines {
        if line.len() > limits.max_header {
            let name = line.split(':').next().unwrap_or_default();
            return Err(Error::HeaderTooLong {
                name: name.trim_end_matches(is_wsp).chars().take(64).collect(),
                len: line.len(),
                limit: limits.max_header,
            });
        }
        let (name, value) = split_header_line(line)?;
        draft.add(name, value)?;
    }
    let body = cut_body(&bytes[body_start..], draft.content_length, transport)?;
    draft.finish(start, body)
}

/// Finds the extent of the first message in a stream buffer (TCP, TLS).
///
/// Errors mean the stream can no longer be framed (no Content-Length, a message over the
/// size limit, a head that is not text): answer if you can, then close the connection.
pub fn frame(buffer: &[u8], limits: &Limits) -> Result<Frame, Error> {
    let breaks = leading_line_breaks(buffer);
    if breaks > 0 {
        return Ok(Frame::KeepAlive(breaks));
    }
    let too_large = |len| Error::TooLarge {
        len,
        limit: limits.max_message,
    };
    let Some((head_end, body_start)) = find_head_end(buffer) else {
        return if buffer.len() > limits.max_message {
            Err(too_large(buffer.len()))
        } else {
            Ok(Frame::Incomplete)
        };
    };
    let head = std::str::from_utf8(&buffer[..head_end]).map_err(|error| Error::NotUtf8 {
        offset: error.valid_up_to(),
    })?;
    let (_, lines) = logical_lines(head);
    let length = lines
        .iter()
        .filter_map(|line| split_header_line(line).ok())
        .find(|(name, _)| {
            name.eq_ignore_ascii_case("content-length") || *name == "l" || *name == "L"
        })
        .ok_or(Error::Missing("Content-Length"))
        .and_then(|(_, value)| parse_content_length(value))?;
    let total = body_start.saturating_add(length);
    if total > limits.max_message {
        return Err(too_large(total));
    }
    Ok(if buffer.len() >= total {
        Frame::Message(total)
    } else {
        Frame::Incomplete
    })
}

/// Builds the response that refuses a request which failed to parse: status and reason
/// from `error`, Via, From, To, Call-ID and CSeq recovered from the bytes as far as they
/// are readable. `to_tag` is added when the To has none.
///
/// Returns `None` when there is nobody to answer: the message was a response or an ACK,
/// or the headers a response needs are themselves unreadable (RFC 3261 §8.2 then leaves
/// silence as the only option).
pub fn refusal(bytes: &[u8], error: &Error, to_tag: &str) -> Option<Response> {
    let text = String::from_utf8_lossy(bytes);
    let text = text.trim_start_matches(['\r', '\n']);
    let head = text.find("\r\n\r\n").map_or(text, |end| &text[..end + 2]);
    let (start_line, lines) = logical_lines(head);
    let method = start_line.split(' ').next().unwrap_or_default();
    if method.to_ascii_uppercase().starts_with("SIP/") || method == "ACK" {
        return None;
    }
    let mut draft = Draft::default();
    for line in &lines {
        let Ok((name, value)) = split_header_line(line) else {
            continue;
        };
        let essential = ["via", "v", "from", "f", "to", "t", "call-id", "i", "cseq"];
        let is_essential = essential
            .iter()
            .any(|known| name.eq_ignore_ascii_case(known));
        if draft.add(name, value).is_err() && is_essential {
            return None;
        }
    }
    let cseq = draft.cseq?;
    if draft.via.is_empty() || cseq.method == Method::Ack {
        return None;
    }
    let mut to = draft.to?;
    if to.tag().is_none() {
        to.set_tag(to_tag);
    }
    let mut headers = Headers::new(draft.from?, to, &draft.call_id?, cseq);
    headers.via = draft.via;
    Some(Response {
        status: error.status(),
        reason: error.reason(),
        headers,
        body: Vec::new(),
    })
}

fn leading_line_breaks(bytes: &[u8]) -> usize {
    bytes
        .iter()
        .take_while(|byte| matches!(byte, b'\r' | b'\n'))
        .count()
}

/// Where the head ends (before the empty line) and the body starts. Lines may end with
/// CRLF or a bare LF; we accept both because being strict here helps nobody.
fn find_head_end(bytes: &[u8]) -> Option<(usize, usize)> {
    let mut line_start = 0;
    for (at, byte) in bytes.iter().enumerate() {
        if *byte != b'\n' {
            continue;
        }
        let line = &bytes[line_start..at];
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.is_empty() && line_start > 0 {
            return Some((line_start, at + 1));
        }
        line_start = at + 1;
    }
    None
}

/// The start line and the header lines, with folded continuations joined by one space.
fn logical_lines(head: &str) -> (&str, Vec<Cow<'_, str>>) {
    let mut physical = head
        .split('\n')
        .map(|line| line.strip_suffix('\r').unwrap_or(line));
    let start = physical.next().unwrap_or_default();
    let mut lines: Vec<Cow<'_, str>> = Vec::new();
    for line in physical {
        if line.is_empty() {
            continue;
        }
        match lines.last_mut() {
            Some(last) if line.starts_with(is_wsp) => {
                let joined = last.to_mut();
                joined.truncate(joined.trim_end_matches(is_wsp).len());
                joined.push(' ');
                joined.push_str(line.trim_start_matches(is_wsp));
            }
            _ => lines.push(Cow::Borrowed(line)),
        }
    }
    (start, lines)
}

fn split_header_line(line: &str) -> Result<(&str, &str), Error> {
    let (name, value) = line.split_once(':').ok_or(Error::BadHeaderLine)?;
    let name = name.trim_end_matches(is_wsp);
    if !is_token(name) {
        return Err(Error::BadHeaderLine);
    }
    Ok((name, value.trim_matches(is_wsp)))
}

enum Start {
    Request(Method, Uri),
    Response(u16, String),
}

fn parse_start_line(line: &str) -> Result<Start, Error> {
    if has_control(line) {
        return Err(Error::BadStartLine);
    }
    if line
        .get(..4)
        .is_some_and(|prefix| prefix.eq_ignore_ascii_case("SIP/"))
    {
        let (version, rest) = line.split_once(' ').ok_or(Error::BadStartLine)?;
        check_version(version)?;
        let (code, reason) = rest.split_once(' ').unwrap_or((rest, ""));
        let status = Some(code)
            .filter(|code| code.len() == 3 && code.bytes().all(|b| b.is_ascii_digit()))
            .and_then(|code| code.parse::<u16>().ok())
            .filter(|status| (100..700).contains(status))
            .ok_or(Error::Malformed {
                field: "Status-Line",
                detail: "status code is not 100-699",
            })?;
        return Ok(Start::Response(status, reason.into()));
    }
    // Several spaces between the elements are tolerated; anything else splitting the
    // Request-URI (white space inside it) leaves more than three parts.
    let parts: Vec<&str> = line.split(' ').filter(|part| !part.is_empty()).collect();
    let [method, uri, version] = parts[..] else {
        return Err(Error::BadStartLine);
    };
    check_version(version)?;
    let method = Method::parse(method)?;
    let uri = parse_uri(uri, "Request-URI")?;
    Ok(Start::Request(method, uri))
}

fn check_version(version: &str) -> Result<(), Error> {
    if version.eq_ignore_ascii_case("SIP/2.0") {
        Ok(())
    } else if version
        .get(..4)
        .is_some_and(|prefix| prefix.eq_ignore_ascii_case("SIP/"))
    {
        Err(Error::Version(version.chars().take(16).collect()))
    } else {
        Err(Error::BadStartLine)
    }
}

fn parse_content_length(value: &str) -> Result<usize, Error> {
    let malformed = Error::Malformed {
        field: "Content-Length",
        detail: "not a non-negative number",
    };
    if value.is_empty() || !value.bytes().all(|b| b.is_ascii_digit()) {
        return Err(malformed);
    }
    value.parse().map_err(|_| malformed)
}

fn cut_body(body: &[u8], declared: Option<usize>, transport: Transport) -> Result<&[u8], Error> {
    match declared {
        Some(length) if length > body.len() => Err(Error::ContentLength {
            declared: length,
            available: body.len(),
        }),
        Some(length) if length < body.len() && transport.is_reliable() => {
            Err(Error::ContentLength {
                declared: length,
                available: body.len(),
            })
        }
        Some(length) => Ok(&body[..length]),
        None if transport.is_reliable() => Err(Error::Missing("Content-Length")),
        None => Ok(body),
    }
}

/// Headers as they are read, before the mandatory ones are known to be there.
#[derive(Default)]
struct Draft {
    via: Vec<crate::header::Via>,
    max_forwards: Option<u8>,
    route: Vec<NameAddr>,
    record_route: Vec<NameAddr>,
    from: Option<NameAddr>,
    to: Option<NameAddr>,
    call_id: Option<String>,
    cseq: Option<CSeq>,
    contact: Vec<crate::header::Contact>,
    expires: Option<u32>,
    authorization: Vec<crate::header::Auth>,
    proxy_authorization: Vec<crate::header::Auth>,
    www_authenticate: Vec<crate::header::Auth>,
    proxy_authenticate: Vec<crate::header::Auth>,
    content_type: Option<String>,
    content_length: Option<usize>,
    other: Vec<(String, String)>,
}

/// Sets a header that may appear only once.
fn once<T>(slot: &mut Option<T>, name: &'static str, value: T) -> Result<(), Error> {
    if slot.is_some() {
        return Err(Error::Duplicate(name));
    }
    *slot = Some(value);
    Ok(())
}

fn number<T: std::str::FromStr>(value: &str, field: &'static str) -> Result<T, Error> {
    let malformed = Error::Malformed {
        field,
        detail: "not a number in range",
    };
    if value.is_empty() || !value.bytes().all(|b| b.is_ascii_digit()) {
        return Err(malformed);
    }
    value.parse().map_err(|_| malformed)
}

/// Compact header names (RFC 3261 §7.3.3 and later registrations) to full names.
const COMPACT: [(&str, &str); 15] = [
    ("v", "Via"),
    ("f", "From"),
    ("t", "To"),
    ("i", "Call-ID"),
    ("m", "Contact"),
    ("l", "Content-Length"),
    ("c", "Content-Type"),
    ("k", "Supported"),
    ("s", "Subject"),
    ("e", "Content-Encoding"),
    ("o", "Event"),
    ("r", "Refer-To"),
    ("u", "Allow-Events"),
    ("x", "Session-Expires"),
    ("b", "Referred-By"),
];

impl Draft {
    fn add(&mut self, name: &str, value: &str) -> Result<(), Error> {
        let full = COMPACT
            .iter()
            .find(|(short, _)| name.eq_ignore_ascii_case(short))
            .map_or(name, |(_, full)| full);
        if has_control(value) {
            return Err(Error::Malformed {
                field: "header value",
                detail: "control character",
            });
        }
        match full.to_ascii_lowercase().as_str() {
            "via" => {
                for part in split_list(value, "Via")? {
                    self.via.push(parse_via(part)?);
                }
            }
            "from" => once(
                &mut self.from,
                "From",
                parse_name_addr(value, "From", true)?,
            )?,
            "to" => once(&mut self.to, "To", parse_name_addr(value, "To", true)?)?,
            "call-id" => {
                if value.is_empty() || value.contains(char::is_whitespace) {
                    return Err(Error::Malformed {
                        field: "Call-ID",
                        detail: "empty or contains white space",
                    });
                }
                once(&mut self.call_id, "Call-ID", value.into())?;
            }
            "cseq" => once(&mut self.cseq, "CSeq", parse_cseq(value)?)?,
            "max-forwards" => once(
                &mut self.max_forwards,
                "Max-Forwards",
                number(value, "Max-Forwards")?,
            )?,
            "contact" => self.contact.extend(parse_contacts(value)?),
            "route" => {
                for part in split_list(value, "Route")? {
                    self.route.push(parse_name_addr(part, "Route", false)?);
                }
            }
            "record-route" => {
                for part in split_list(value, "Record-Route")? {
                    self.record_route
                        .push(parse_name_addr(part, "Record-Route", false)?);
                }
            }
            "expires" => once(&mut self.expires, "Expires", number(value, "Expires")?)?,
            "content-length" => once(
                &mut self.content_length,
                "Content-Length",
                parse_content_length(value)?,
            )?,
            "content-type" => {
                if !value.contains('/') {
                    return Err(Error::Malformed {
                        field: "Content-Type",
                        detail: "not a media type",
                    });
                }
                once(&mut self.content_type, "Content-Type", value.into())?;
            }
            "authorization" => self.authorization.push(parse_auth(value, "Authorization")?),
            "proxy-authorization" => self
                .proxy_authorization
                .push(parse_auth(value, "Proxy-Authorization")?),
            "www-authenticate" => self
                .www_authenticate
                .push(parse_auth(value, "WWW-Authenticate")?),
            "proxy-authenticate" => self
                .proxy_authenticate
                .push(parse_auth(value, "Proxy-Authenticate")?),
            _ => self.other.push((full.into(), value.into())),
        }
        Ok(())
    }

    fn finish(self, start: Start, body: &[u8]) -> Result<Message, Error> {
        if self.via.is_empty() {
            return Err(Error::Missing("Via"));
        }
        let from = self.from.ok_or(Error::Missing("From"))?;
        let to = self.to.ok_or(Error::Missing("To"))?;
        let call_id = self.call_id.ok_or(Error::Missing("Call-ID"))?;
        let cseq = self.cseq.ok_or(Error::Missing("CSeq"))?;
        let headers = Headers {
            via: self.via,
            max_forwards: self.max_forwards,
            route: self.route,
            record_route: self.record_route,
            from,
            to,
            call_id,
            cseq,
            contact: self.contact,
            expires: self.expires,
            authorization: self.authorization,
            proxy_authorization: self.proxy_authorization,
            www_authenticate: self.www_authenticate,
            proxy_authenticate: self.proxy_authenticate,
            content_type: self.content_type,
            other: self.other,
        };
        Ok(match start {
            Start::Request(method, uri) => {
                if headers.cseq.method != method {
                    return Err(Error::CSeqMismatch {
                        cseq: headers.cseq.method.to_string(),
                        method: method.to_string(),
                    });
                }
                Message::Request(Request {
                    method,
                    uri,
                    headers,
                    body: body.to_vec(),
                })
            }
            Start::Response(status, reason) => Message::Response(Response {
                status,
                reason,
                headers,
                body: body.to_vec(),
            }),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const INVITE: &str = "INVITE sip:bob@b.example SIP/2.0\r\n\
        Via: SIP/2.0/UDP a.example:5060;branch=z9hG4bK1\r\n\
        Max-Forwards: 70\r\n\
        From: <sip:alice@a.example>;tag=1\r\n\
        To: <sip:bob@b.example>\r\n\
        Call-ID: c1@a.example\r\n\
        CSeq: 1 INVITE\r\n\
        Content-Length: 4\r\n\
        \r\n\
        v=0\n";

    fn request(text: &str) -> Request {
        match parse(text.as_bytes(), Transport::Udp).unwrap() {
            Message::Request(request) => request,
            Message::Response(_) => panic!("a response"),
        }
    }

    #[test]
    fn parses_a_plain_invite() {
        let invite = request(INVITE);
        assert_eq!(invite.method, Method::Invite);
        assert_eq!(invite.headers.max_forwards, Some(70));
        assert_eq!(invite.body, b"v=0\n");
        assert_eq!(
            parse(&invite.to_bytes(), Transport::Tcp),
            Ok(Message::Request(invite))
        );
    }

    #[test]
    fn unfolds_lines_and_expands_compact_names() {
        let text = "OPTIONS sip:b SIP/2.0\r\nv: SIP/2.0/UDP a;branch=z9hG4bKx\r\nf: <sip:a@a>\r\n  ;tag=9\r\nt: sip:b\r\ni: x\r\nCSeq: 2\r\n\tOPTIONS\r\nk: timer\r\nl: 0\r\n\r\n";
        let options = request(text);
        assert_eq!(options.headers.from.tag(), Some("9"));
        assert_eq!(options.headers.cseq.seq, 2);
        assert_eq!(
            options.headers.other,
            [("Supported".into(), "timer".into())]
        );
    }

    #[test]
    fn udp_bodies_follow_content_length_and_streams_need_it() {
        let short = INVITE.replace("Content-Length: 4", "Content-Length: 2");
        assert_eq!(request(&short).body, b"v=");
        assert!(matches!(
            parse(short.as_bytes(), Transport::Tcp),
            Err(Error::ContentLength {
                declared: 2,
                available: 4
            })
        ));
        let long = INVITE.replace("Content-Length: 4", "Content-Length: 40");
        assert!(matches!(
            parse(long.as_bytes(), Transport::Udp),
            Err(Error::ContentLength {
                declared: 40,
                available: 4
            })
        ));
        let absent = INVITE.replace("Content-Length: 4\r\n", "");
        assert_eq!(request(&absent).body, b"v=0\n");
        assert_eq!(
            parse(absent.as_bytes(), Transport::Tcp),
            Err(Error::Missing("Content-Length"))
        );
    }

    #[test]
    fn frames_a_stream_message_by_message() {
        let limits = Limits::default();
        let mut stream = b"\r\n\r\n".to_vec();
        stream.extend_from_slice(INVITE.as_bytes());
        stream.extend_from_slice(b"OPTIONS");
        assert_eq!(frame(&stream, &limits), Ok(Frame::KeepAlive(4)));
        let rest = &stream[4..];
        assert_eq!(frame(rest, &limits), Ok(Frame::Message(INVITE.len())));
        assert_eq!(
            frame(&rest[..INVITE.len() - 1], &limits),
            Ok(Frame::Incomplete)
        );
        assert_eq!(frame(&rest[INVITE.len()..], &limits), Ok(Frame::Incomplete));
        let small = Limits {
            max_message: 64,
            ..limits
        };
        assert!(matches!(
            frame(&[b'x'; 65], &small),
            Err(Error::TooLarge { .. })
        ));
    }

    #[test]
    fn refusal_copies_what_a_response_needs() {
        let bad = INVITE.replace("sip:bob@b.example SIP", "sip:b%ZZob@b.example SIP");
        let error = parse(bad.as_bytes(), Transport::Udp).unwrap_err();
        assert_eq!(error.reason(), "Bad Escape In Request-URI");
        let response = refusal(bad.as_bytes(), &error, "tag400").unwrap();
        assert_eq!(
            (response.status, response.reason.as_str()),
            (400, "Bad Escape In Request-URI")
        );
        assert_eq!(response.headers.to.tag(), Some("tag400"));
        assert_eq!(response.headers.call_id, "c1@a.example");
        let no_call_id = INVITE.replace("Call-ID: c1@a.example\r\n", "");
        assert_eq!(
            refusal(no_call_id.as_bytes(), &Error::Missing("Call-ID"), "t"),
            None
        );
        let ack = INVITE.replace("INVITE sip", "ACK sip");
        assert_eq!(refusal(ack.as_bytes(), &Error::BadStartLine, "t"), None);
    }
}
