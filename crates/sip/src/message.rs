//! SIP messages as values: requests, responses, their headers, and printing.

use std::fmt;

use crate::Error;
use crate::header::{Auth, CSeq, Contact, NameAddr, Via};
use crate::text::is_token;
use crate::uri::Uri;

/// A request method. Methods are case-sensitive; any other token is an extension method,
/// which RFC 3261 §8.2.1 says a UAS answers with 405 rather than 400.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Method {
    /// INVITE.
    Invite,
    /// ACK.
    Ack,
    /// BYE.
    Bye,
    /// CANCEL.
    Cancel,
    /// OPTIONS.
    Options,
    /// REGISTER.
    Register,
    /// INFO.
    Info,
    /// UPDATE.
    Update,
    /// PRACK.
    Prack,
    /// SUBSCRIBE.
    Subscribe,
    /// NOTIFY.
    Notify,
    /// REFER.
    Refer,
    /// MESSAGE.
    Message,
    /// Any other token. Build it with [`Method::parse`] so a known name never lands here.
    Extension(String),
}

const KNOWN_METHODS: [(Method, &str); 13] = [
    (Method::Invite, "INVITE"),
    (Method::Ack, "ACK"),
    (Method::Bye, "BYE"),
    (Method::Cancel, "CANCEL"),
    (Method::Options, "OPTIONS"),
    (Method::Register, "REGISTER"),
    (Method::Info, "INFO"),
    (Method::Update, "UPDATE"),
    (Method::Prack, "PRACK"),
    (Method::Subscribe, "SUBSCRIBE"),
    (Method::Notify, "NOTIFY"),
    (Method::Refer, "REFER"),
    (Method::Message, "MESSAGE"),
];

impl Method {
    /// Reads a method token.
    pub fn parse(text: &str) -> Result<Self, Error> {
        if !is_token(text) {
            return Err(Error::BadStartLine);
        }
        let known = KNOWN_METHODS.iter().find(|(_, name)| *name == text);
        Ok(known.map_or_else(
            || Self::Extension(text.into()),
            |(method, _)| method.clone(),
        ))
    }

    /// The method's name.
    pub fn as_str(&self) -> &str {
        match self {
            Self::Extension(name) => name,
            known => KNOWN_METHODS
                .iter()
                .find(|(method, _)| method == known)
                .map_or("", |(_, name)| name),
        }
    }
}

impl fmt::Display for Method {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The transport a message travels on. Reliability decides which retransmission timers run
/// and whether Content-Length is mandatory.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Transport {
    /// Datagrams: Content-Length optional, retransmissions needed.
    Udp,
    /// A TCP stream.
    Tcp,
    /// TLS over TCP.
    Tls,
}

impl Transport {
    /// Whether the transport delivers in order without loss (no retransmission timers).
    pub fn is_reliable(self) -> bool {
        !matches!(self, Self::Udp)
    }

    /// The Via transport token.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Udp => "UDP",
            Self::Tcp => "TCP",
            Self::Tls => "TLS",
        }
    }
}

/// The headers of a message, typed where this crate uses them.
///
/// Values that may repeat are vectors in the order received (one element per value,
/// whether they came on one line with commas or on several lines). Content-Length is not
/// stored: it is checked on parse and written from the body on print. `other` keeps every
/// header this crate does not type, in order, with compact names expanded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Headers {
    /// Via values, topmost first.
    pub via: Vec<Via>,
    /// Max-Forwards (0–255), optional on parse because a UAS may do without it.
    pub max_forwards: Option<u8>,
    /// Route values, in order.
    pub route: Vec<NameAddr>,
    /// Record-Route values, in order.
    pub record_route: Vec<NameAddr>,
    /// From.
    pub from: NameAddr,
    /// To.
    pub to: NameAddr,
    /// Call-ID.
    pub call_id: String,
    /// CSeq.
    pub cseq: CSeq,
    /// Contact values.
    pub contact: Vec<Contact>,
    /// Expires, in seconds.
    pub expires: Option<u32>,
    /// Authorization values.
    pub authorization: Vec<Auth>,
    /// Proxy-Authorization values.
    pub proxy_authorization: Vec<Auth>,
    /// WWW-Authenticate values.
    pub www_authenticate: Vec<Auth>,
    /// Proxy-Authenticate values.
    pub proxy_authenticate: Vec<Auth>,
    /// Content-Type, as received (`application/sdp`).
    pub content_type: Option<String>,
    /// Every other header, `(name, value)`, in order.
    pub other: Vec<(String, String)>,
}

impl Headers {
    /// The headers every message needs; the rest start empty.
    pub fn new(from: NameAddr, to: NameAddr, call_id: &str, cseq: CSeq) -> Self {
        Self {
            via: Vec::new(),
            max_forwards: None,
            route: Vec::new(),
            record_route: Vec::new(),
            from,
            to,
            call_id: call_id.into(),
            cseq,
            contact: Vec::new(),
            expires: None,
            authorization: Vec::new(),
            proxy_authorization: Vec::new(),
            www_authenticate: Vec::new(),
            proxy_authenticate: Vec::new(),
            content_type: None,
            other: Vec::new(),
        }
    }

    /// Values of an untyped header, by case-insensitive name.
    pub fn other(&self, name: &str) -> impl Iterator<Item = &str> {
        self.other
            .iter()
            .filter(move |(other, _)| other.eq_ignore_ascii_case(name))
            .map(|(_, value)| value.as_str())
    }
}

/// A SIP request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    /// The method.
    pub method: Method,
    /// The Request-URI.
    pub uri: Uri,
    /// The headers.
    pub headers: Headers,
    /// The body, as bytes (SDP, multipart, anything).
    pub body: Vec<u8>,
}

/// A SIP response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    /// 100–699.
    pub status: u16,
    /// The reason phrase.
    pub reason: String,
    /// The headers.
    pub headers: Headers,
    /// The body.
    pub body: Vec<u8>,
}

/// A request or a response.
#[derive(Debug, Clone, PartialEq, Eq)]
#[allow(clippy::large_enum_variant)] // both variants are large; boxing one buys nothing
pub enum Message {
    /// A request.
    Request(Request),
    /// A response.
    Response(Response),
}

impl Message {
    /// The message as bytes on the wire.
    pub fn to_bytes(&self) -> Vec<u8> {
        match self {
            Self::Request(request) => request.to_bytes(),
            Self::Response(response) => response.to_bytes(),
        }
    }

    /// The headers.
    pub fn headers(&self) -> &Headers {
        match self {
            Self::Request(request) => &request.headers,
            Self::Response(response) => &response.headers,
        }
    }
}

impl Request {
    /// The request as bytes.
    pub fn to_bytes(&self) -> Vec<u8> {
        let start = format!("{} {} SIP/2.0", self.method, self.uri);
        print_message(&start, &self.headers, &self.body)
    }
}

impl Response {
    /// The response as bytes.
    pub fn to_bytes(&self) -> Vec<u8> {
        let start = format!("SIP/2.0 {:03} {}", self.status, self.reason);
        print_message(&start, &self.headers, &self.body)
    }

    /// Sets the To tag, which a UAS adds to every response but 100 (RFC 3261 §8.2.6.2).
    pub fn with_to_tag(mut self, tag: &str) -> Self {
        self.headers.to.set_tag(tag);
        self
    }
}

/// Builds a response to `request` per RFC 3261 §8.2.6: the Via values in order, From,
/// To, Call-ID and CSeq copied, no body. A To tag is not invented here (tags need
/// randomness); add one with [`Response::with_to_tag`] unless the status is 100 or the
/// request already had one.
pub fn response_to(request: &Request, status: u16, reason: &str) -> Response {
    let source = &request.headers;
    let mut headers = Headers::new(
        source.from.clone(),
        source.to.clone(),
        &source.call_id,
        source.cseq.clone(),
    );
    headers.via = source.via.clone();
    // A 100 must carry a copied Timestamp (§8.2.6.1); other headers are the TU's choice.
    if status == 100 {
        let stamps = source
            .other("Timestamp")
            .map(|value| ("Timestamp".into(), value.into()));
        headers.other.extend(stamps);
    }
    Response {
        status,
        reason: reason.into(),
        headers,
        body: Vec::new(),
    }
}

/// Builds the CANCEL for an INVITE we sent (RFC 3261 §9.1): same Request-URI, Call-ID,
/// From, To, CSeq number and Route, and only the top Via, so it shares the INVITE's branch.
pub fn cancel_for(invite: &Request) -> Request {
    let source = &invite.headers;
    let cseq = CSeq {
        seq: source.cseq.seq,
        method: Method::Cancel,
    };
    let mut headers = Headers::new(
        source.from.clone(),
        source.to.clone(),
        &source.call_id,
        cseq,
    );
    headers.via = source.via.iter().take(1).cloned().collect();
    headers.max_forwards = Some(70);
    headers.route = source.route.clone();
    Request {
        method: Method::Cancel,
        uri: invite.uri.clone(),
        headers,
        body: Vec::new(),
    }
}

/// Writes text that must stay on one line. Parsed values never hold CR or LF, but a TU may
/// build a reason phrase or a header from outside data; a line break there would let that
/// data add headers of its own, so it becomes a space.
fn push_line(out: &mut String, text: &str) {
    out.extend(
        text.chars()
            .map(|c| if c == '\r' || c == '\n' { ' ' } else { c }),
    );
    out.push_str("\r\n");
}

fn print_message(start: &str, headers: &Headers, body: &[u8]) -> Vec<u8> {
    let mut out = String::with_capacity(512);
    push_line(&mut out, start);
    let mut line = |name: &str, value: &dyn fmt::Display| {
        push_line(&mut out, &format!("{name}: {value}"));
    };
    for via in &headers.via {
        line("Via", via);
    }
    if let Some(max_forwards) = headers.max_forwards {
        line("Max-Forwards", &max_forwards);
    }
    for route in &headers.route {
        line("Route", route);
    }
    for route in &headers.record_route {
        line("Record-Route", route);
    }
    line("From", &headers.from);
    line("To", &headers.to);
    line("Call-ID", &headers.call_id);
    line("CSeq", &headers.cseq);
    for contact in &headers.contact {
        line("Contact", contact);
    }
    if let Some(expires) = headers.expires {
        line("Expires", &expires);
    }
    let auth_headers = [
        ("Authorization", &headers.authorization),
        ("Proxy-Authorization", &headers.proxy_authorization),
        ("WWW-Authenticate", &headers.www_authenticate),
        ("Proxy-Authenticate", &headers.proxy_authenticate),
    ];
    for (name, values) in auth_headers {
        for value in values {
            line(name, value);
        }
    }
    for (name, value) in &headers.other {
        line(name, value);
    }
    if let Some(content_type) = &headers.content_type {
        line("Content-Type", content_type);
    }
    line("Content-Length", &body.len());
    out.push_str("\r\n");
    let mut bytes = out.into_bytes();
    bytes.extend_from_slice(body);
    bytes
}

impl fmt::Display for Message {
    /// The message as text, with a non-UTF-8 body shown lossily (for logs and tests).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&String::from_utf8_lossy(&self.to_bytes()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::uri::SipUri;

    fn invite() -> Request {
        let from = NameAddr::new(SipUri::new(Some("alice"), "a.example", None));
        let to = NameAddr::new(SipUri::new(Some("bob"), "b.example", None));
        let cseq = CSeq {
            seq: 7,
            method: Method::Invite,
        };
        let mut headers = Headers::new(from, to, "call-1", cseq);
        headers.via = vec![
            Via::new(Transport::Udp, "proxy.example", None, "z9hG4bKp"),
            Via::new(Transport::Udp, "a.example", Some(5070), "z9hG4bKa"),
        ];
        headers.from.set_tag("f1");
        headers.other.push(("Timestamp".into(), "54".into()));
        Request {
            method: Method::Invite,
            uri: SipUri::new(Some("bob"), "b.example", None).into(),
            headers,
            body: b"v=0\r\n".to_vec(),
        }
    }

    #[test]
    fn methods_are_case_sensitive_and_extensible() {
        assert_eq!(Method::parse("INVITE").unwrap(), Method::Invite);
        assert_eq!(
            Method::parse("invite").unwrap(),
            Method::Extension("invite".into())
        );
        assert_eq!(Method::parse("NEWMETHOD").unwrap().as_str(), "NEWMETHOD");
        assert!(Method::parse("BAD METHOD").is_err());
        assert!(Method::parse("").is_err());
    }

    #[test]
    fn responses_copy_the_transaction_headers() {
        let request = invite();
        let response = response_to(&request, 100, "Trying");
        assert_eq!(response.headers.via, request.headers.via);
        assert_eq!(
            response.headers.other("timestamp").collect::<Vec<_>>(),
            ["54"]
        );
        let ringing = response_to(&request, 180, "Ringing").with_to_tag("t9");
        assert_eq!(ringing.headers.to.tag(), Some("t9"));
        assert_eq!(ringing.headers.from.tag(), Some("f1"));
        assert!(ringing.headers.other.is_empty());
        let text = String::from_utf8(ringing.to_bytes()).unwrap();
        let first_lines: Vec<&str> = text.lines().take(3).collect();
        assert_eq!(
            first_lines,
            [
                "SIP/2.0 180 Ringing",
                "Via: SIP/2.0/UDP proxy.example;branch=z9hG4bKp",
                "Via: SIP/2.0/UDP a.example:5070;branch=z9hG4bKa"
            ]
        );
        assert!(text.ends_with("Content-Length: 0\r\n\r\n"));
    }

    #[test]
    fn line_breaks_in_values_cannot_add_headers() {
        let mut response = response_to(&invite(), 486, "Busy\r\nX-Injected: 1");
        response
            .headers
            .other
            .push(("X-Note".into(), "a\r\nX-Also: 2".into()));
        let text = String::from_utf8(response.to_bytes()).unwrap();
        assert!(
            text.starts_with("SIP/2.0 486 Busy  X-Injected: 1\r\n"),
            "{text}"
        );
        assert!(!text.contains("\nX-Also"), "{text}");
    }

    #[test]
    fn cancel_shares_the_branch_and_cseq_number() {
        let cancel = cancel_for(&invite());
        assert_eq!(cancel.headers.via.len(), 1);
        assert_eq!(cancel.headers.via[0].branch(), Some("z9hG4bKp"));
        assert_eq!(
            (cancel.headers.cseq.seq, &cancel.headers.cseq.method),
            (7, &Method::Cancel)
        );
        assert!(cancel.body.is_empty());
    }
}
