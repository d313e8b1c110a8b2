//! Transaction traces in simulated time: scripted messages and TU actions at given
//! milliseconds, with every output of the layer (sends, TU events, timers armed) as a
//! snapshot. Timers fire in deadline order when the script moves time forward.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use expect_test::expect;
use sip::{
    Event, Message, Method, Output, Request, Timers, TransactionId, Transactions, Transport,
    cancel_for, parse, response_to,
};

const CARRIER: &str = "127.0.0.1:5080";
const PHONE: &str = "127.0.0.1:5090";

struct Trace {
    layer: Transactions,
    origin: Instant,
    now: Duration,
    log: String,
}

impl Trace {
    fn new() -> Self {
        #[allow(clippy::disallowed_methods)] // only an origin: every time below is origin + offset
        let origin = Instant::now();
        Self {
            layer: Transactions::new(Timers::default()),
            origin,
            now: Duration::ZERO,
            log: String::new(),
        }
    }

    /// Moves time to `ms`, firing every timer due on the way at its own deadline.
    fn advance(&mut self, ms: u64) {
        let until = self.origin + Duration::from_millis(ms);
        while let Some(next) = self.layer.next_timer().filter(|next| *next <= until) {
            self.now = next - self.origin;
            let outputs = self.layer.timer(next);
            self.record("timers", &outputs);
        }
        self.now = Duration::from_millis(ms);
    }

    fn receive(&mut self, ms: u64, text: &str, from: &str, transport: Transport) {
        self.advance(ms);
        let message = message(text);
        let label = format!("receive {}", first_line(&message));
        let outputs =
            self.layer
                .received(message, from.parse().unwrap(), transport, self.instant());
        self.record(&label, &outputs);
    }

    fn respond(
        &mut self,
        ms: u64,
        transaction: TransactionId,
        request: &Request,
        status: u16,
        reason: &str,
    ) {
        self.advance(ms);
        let mut response = response_to(request, status, reason);
        if status > 100 {
            response = response.with_to_tag("gk1");
        }
        let label = format!("TU responds {status} on {transaction}");
        let outputs = self
            .layer
            .respond(transaction, response, self.instant())
            .unwrap();
        self.record(&label, &outputs);
    }

    fn send(&mut self, ms: u64, request: Request, to: &str, transport: Transport) -> TransactionId {
        self.advance(ms);
        let label = format!("TU sends {} {}", request.method, request.uri);
        let (id, outputs) = self
            .layer
            .request(request, to.parse().unwrap(), transport, self.instant())
            .unwrap();
        self.record(&label, &outputs);
        id
    }

    fn instant(&self) -> Instant {
        self.origin + self.now
    }

    fn record(&mut self, label: &str, outputs: &[Output]) {
        self.log
            .push_str(&format!("+{}ms {label}\n", self.now.as_millis()));
        for output in outputs {
            let line = match output {
                Output::Send {
                    transaction,
                    to,
                    transport,
                    message,
                } => {
                    let headers = message.headers();
                    let tag = headers
                        .to
                        .tag()
                        .map(|tag| format!(", to-tag {tag}"))
                        .unwrap_or_default();
                    format!(
                        "{transaction} send {} ({}{tag}) to {to} over {transport:?}",
                        first_line(message),
                        headers.cseq
                    )
                }
                Output::Armed {
                    transaction,
                    timer,
                    at,
                } => {
                    format!(
                        "{transaction} arm {timer:?} at +{}ms",
                        (*at - self.origin).as_millis()
                    )
                }
                Output::Event(event) => format!("TU: {}", describe(event)),
            };
            self.log.push_str(&format!("  {line}\n"));
        }
    }

    /// The request the TU saw last (for building responses).
    fn last_request(&self, outputs: &[Output]) -> Option<(TransactionId, Request)> {
        outputs.iter().find_map(|output| match output {
            Output::Event(Event::Request {
                transaction,
                request,
                ..
            }) => Some((*transaction, request.clone())),
            _ => None,
        })
    }
}

fn describe(event: &Event) -> String {
    match event {
        Event::Request {
            transaction,
            request,
            source,
            ..
        } => {
            let via = &request.headers.via[0];
            format!(
                "request {} on {transaction} from {source} (top Via {via})",
                request.method
            )
        }
        Event::Ack {
            transaction,
            request,
            ..
        } => {
            let matched = transaction.map_or("no transaction".to_owned(), |id| id.to_string());
            format!("ACK (CSeq {}) for {matched}", request.headers.cseq.seq)
        }
        Event::Cancelled { invite } => format!("{invite} cancelled"),
        Event::Response {
            transaction,
            response,
        } => {
            format!(
                "response {} {} on {transaction}",
                response.status, response.reason
            )
        }
        Event::Timeout { transaction } => format!("{transaction} timed out"),
        Event::NoAck { transaction } => format!("{transaction} got no ACK"),
        Event::Terminated { transaction } => format!("{transaction} terminated"),
    }
}

fn first_line(message: &Message) -> String {
    let text = message.to_string();
    text.lines().next().unwrap_or_default().to_owned()
}

/// A message written with LF line ends, sent with CRLF.
fn message(text: &str) -> Message {
    let wire = text.trim_start().replace('\n', "\r\n");
    parse(wire.as_bytes(), Transport::Udp).unwrap()
}

fn request(text: &str) -> Request {
    match message(text) {
        Message::Request(request) => request,
        Message::Response(_) => panic!("not a request"),
    }
}

const INVITE: &str = "
INVITE sip:service@127.0.0.1:5060 SIP/2.0
Via: SIP/2.0/UDP 127.0.0.1:5080;branch=z9hG4bKcarrier1;rport
Max-Forwards: 70
From: <sip:+81312345678@carrier.example>;tag=c1
To: <sip:service@genkan.example>
Call-ID: call-1@carrier.example
CSeq: 1 INVITE
Contact: <sip:+81312345678@127.0.0.1:5080>
Content-Length: 0

";

const ACK_FOR_2XX: &str = "
ACK sip:service@127.0.0.1:5060 SIP/2.0
Via: SIP/2.0/UDP 127.0.0.1:5080;branch=z9hG4bKcarrier2
Max-Forwards: 70
From: <sip:+81312345678@carrier.example>;tag=c1
To: <sip:service@genkan.example>;tag=gk1
Call-ID: call-1@carrier.example
CSeq: 1 ACK
Content-Length: 0

";

const ACK_FOR_ERROR: &str = "
ACK sip:service@127.0.0.1:5060 SIP/2.0
Via: SIP/2.0/UDP 127.0.0.1:5080;branch=z9hG4bKcarrier1;rport
Max-Forwards: 70
From: <sip:+81312345678@carrier.example>;tag=c1
To: <sip:service@genkan.example>;tag=gk1
Call-ID: call-1@carrier.example
CSeq: 1 ACK
Content-Length: 0

";

const CANCEL: &str = "
CANCEL sip:service@127.0.0.1:5060 SIP/2.0
Via: SIP/2.0/UDP 127.0.0.1:5080;branch=z9hG4bKcarrier1;rport
Max-Forwards: 70
From: <sip:+81312345678@carrier.example>;tag=c1
To: <sip:service@genkan.example>
Call-ID: call-1@carrier.example
CSeq: 1 CANCEL
Content-Length: 0

";

/// Receives the carrier's INVITE at 0 ms and returns the server transaction.
fn incoming_call(trace: &mut Trace) -> (TransactionId, Request) {
    trace.advance(0);
    let outputs = trace.layer.received(
        message(INVITE),
        CARRIER.parse().unwrap(),
        Transport::Udp,
        trace.instant(),
    );
    trace.record("receive INVITE", &outputs);
    trace.last_request(&outputs).unwrap()
}

#[test]
fn invite_is_answered_with_100_180_200_and_acknowledged() {
    let mut trace = Trace::new();
    let (tx, invite) = incoming_call(&mut trace);
    trace.respond(20, tx, &invite, 180, "Ringing");
    trace.respond(3000, tx, &invite, 200, "OK");
    trace.receive(3040, ACK_FOR_2XX, CARRIER, Transport::Udp);
    trace.advance(40_000);
    expect![[r#"
        +0ms receive INVITE
          tx1 send SIP/2.0 100 Trying (1 INVITE) to 127.0.0.1:5080 over Udp
          TU: request INVITE on tx1 from 127.0.0.1:5080 (top Via SIP/2.0/UDP 127.0.0.1:5080;branch=z9hG4bKcarrier1;rport=5080;received=127.0.0.1)
        +20ms TU responds 180 on tx1
          tx1 send SIP/2.0 180 Ringing (1 INVITE, to-tag gk1) to 127.0.0.1:5080 over Udp
        +3000ms TU responds 200 on tx1
          tx1 send SIP/2.0 200 OK (1 INVITE, to-tag gk1) to 127.0.0.1:5080 over Udp
          tx1 arm G at +3500ms
          tx1 arm L at +35000ms
        +3040ms receive ACK sip:service@127.0.0.1:5060 SIP/2.0
          TU: ACK (CSeq 1) for tx1
        +35000ms timers
          TU: tx1 terminated
    "#]]
    .assert_eq(&trace.log);
}

#[test]
fn a_200_is_retransmitted_until_the_ack_arrives() {
    let mut trace = Trace::new();
    let (tx, invite) = incoming_call(&mut trace);
    trace.respond(0, tx, &invite, 200, "OK");
    trace.receive(9000, ACK_FOR_2XX, CARRIER, Transport::Udp);
    trace.receive(9100, ACK_FOR_2XX, CARRIER, Transport::Udp);
    expect![[r#"
        +0ms receive INVITE
          tx1 send SIP/2.0 100 Trying (1 INVITE) to 127.0.0.1:5080 over Udp
          TU: request INVITE on tx1 from 127.0.0.1:5080 (top Via SIP/2.0/UDP 127.0.0.1:5080;branch=z9hG4bKcarrier1;rport=5080;received=127.0.0.1)
        +0ms TU responds 200 on tx1
          tx1 send SIP/2.0 200 OK (1 INVITE, to-tag gk1) to 127.0.0.1:5080 over Udp
          tx1 arm G at +500ms
          tx1 arm L at +32000ms
        +500ms timers
          tx1 send SIP/2.0 200 OK (1 INVITE, to-tag gk1) to 127.0.0.1:5080 over Udp
          tx1 arm G at +1500ms
        +1500ms timers
          tx1 send SIP/2.0 200 OK (1 INVITE, to-tag gk1) to 127.0.0.1:5080 over Udp
          tx1 arm G at +3500ms
        +3500ms timers
          tx1 send SIP/2.0 200 OK (1 INVITE, to-tag gk1) to 127.0.0.1:5080 over Udp
          tx1 arm G at +7500ms
        +7500ms timers
          tx1 send SIP/2.0 200 OK (1 INVITE, to-tag gk1) to 127.0.0.1:5080 over Udp
          tx1 arm G at +11500ms
        +9000ms receive ACK sip:service@127.0.0.1:5060 SIP/2.0
          TU: ACK (CSeq 1) for tx1
        +9100ms receive ACK sip:service@127.0.0.1:5060 SIP/2.0
    "#]]
    .assert_eq(&trace.log);
}

#[test]
fn invite_retransmissions_are_absorbed() {
    let mut trace = Trace::new();
    let (tx, invite) = incoming_call(&mut trace);
    trace.receive(500, INVITE, CARRIER, Transport::Udp);
    trace.respond(700, tx, &invite, 180, "Ringing");
    trace.receive(1500, INVITE, CARRIER, Transport::Udp);
    trace.respond(2000, tx, &invite, 200, "OK");
    trace.receive(2100, INVITE, CARRIER, Transport::Udp);
    trace.receive(2200, ACK_FOR_2XX, CARRIER, Transport::Udp);
    expect![[r#"
        +0ms receive INVITE
          tx1 send SIP/2.0 100 Trying (1 INVITE) to 127.0.0.1:5080 over Udp
          TU: request INVITE on tx1 from 127.0.0.1:5080 (top Via SIP/2.0/UDP 127.0.0.1:5080;branch=z9hG4bKcarrier1;rport=5080;received=127.0.0.1)
        +500ms receive INVITE sip:service@127.0.0.1:5060 SIP/2.0
          tx1 send SIP/2.0 100 Trying (1 INVITE) to 127.0.0.1:5080 over Udp
        +700ms TU responds 180 on tx1
          tx1 send SIP/2.0 180 Ringing (1 INVITE, to-tag gk1) to 127.0.0.1:5080 over Udp
        +1500ms receive INVITE sip:service@127.0.0.1:5060 SIP/2.0
          tx1 send SIP/2.0 180 Ringing (1 INVITE, to-tag gk1) to 127.0.0.1:5080 over Udp
        +2000ms TU responds 200 on tx1
          tx1 send SIP/2.0 200 OK (1 INVITE, to-tag gk1) to 127.0.0.1:5080 over Udp
          tx1 arm G at +2500ms
          tx1 arm L at +34000ms
        +2100ms receive INVITE sip:service@127.0.0.1:5060 SIP/2.0
        +2200ms receive ACK sip:service@127.0.0.1:5060 SIP/2.0
          TU: ACK (CSeq 1) for tx1
    "#]]
    .assert_eq(&trace.log);
}

#[test]
fn cancel_before_answer_gets_200_and_the_invite_487() {
    let mut trace = Trace::new();
    let (tx, invite) = incoming_call(&mut trace);
    trace.respond(20, tx, &invite, 180, "Ringing");
    trace.receive(4000, CANCEL, CARRIER, Transport::Udp);
    trace.receive(4040, ACK_FOR_ERROR, CARRIER, Transport::Udp);
    trace.receive(4500, CANCEL, CARRIER, Transport::Udp);
    trace.advance(40_000);
    expect![[r#"
        +0ms receive INVITE
          tx1 send SIP/2.0 100 Trying (1 INVITE) to 127.0.0.1:5080 over Udp
          TU: request INVITE on tx1 from 127.0.0.1:5080 (top Via SIP/2.0/UDP 127.0.0.1:5080;branch=z9hG4bKcarrier1;rport=5080;received=127.0.0.1)
        +20ms TU responds 180 on tx1
          tx1 send SIP/2.0 180 Ringing (1 INVITE, to-tag gk1) to 127.0.0.1:5080 over Udp
        +4000ms receive CANCEL sip:service@127.0.0.1:5060 SIP/2.0
          tx2 send SIP/2.0 200 OK (1 CANCEL, to-tag gk1) to 127.0.0.1:5080 over Udp
          tx2 arm J at +36000ms
          tx1 send SIP/2.0 487 Request Terminated (1 INVITE, to-tag gk1) to 127.0.0.1:5080 over Udp
          tx1 arm G at +4500ms
          tx1 arm H at +36000ms
          TU: tx1 cancelled
        +4040ms receive ACK sip:service@127.0.0.1:5060 SIP/2.0
          tx1 arm I at +9040ms
        +4500ms receive CANCEL sip:service@127.0.0.1:5060 SIP/2.0
          tx2 send SIP/2.0 200 OK (1 CANCEL, to-tag gk1) to 127.0.0.1:5080 over Udp
        +9040ms timers
          TU: tx1 terminated
        +36000ms timers
          TU: tx2 terminated
    "#]]
    .assert_eq(&trace.log);
}

#[test]
fn cancel_for_an_unknown_invite_gets_481() {
    let mut trace = Trace::new();
    trace.receive(0, CANCEL, CARRIER, Transport::Udp);
    expect![[r#"
        +0ms receive CANCEL sip:service@127.0.0.1:5060 SIP/2.0
          tx1 send SIP/2.0 481 Call/Transaction Does Not Exist (1 CANCEL, to-tag 565dd9dbcc27) to 127.0.0.1:5080 over Udp
          tx1 arm J at +32000ms
    "#]]
    .assert_eq(&trace.log);
}

#[test]
fn timer_h_gives_up_on_an_ack_that_never_comes() {
    let mut trace = Trace::new();
    let (tx, invite) = incoming_call(&mut trace);
    trace.respond(100, tx, &invite, 486, "Busy Here");
    trace.advance(40_000);
    expect![[r#"
        +0ms receive INVITE
          tx1 send SIP/2.0 100 Trying (1 INVITE) to 127.0.0.1:5080 over Udp
          TU: request INVITE on tx1 from 127.0.0.1:5080 (top Via SIP/2.0/UDP 127.0.0.1:5080;branch=z9hG4bKcarrier1;rport=5080;received=127.0.0.1)
        +100ms TU responds 486 on tx1
          tx1 send SIP/2.0 486 Busy Here (1 INVITE, to-tag gk1) to 127.0.0.1:5080 over Udp
          tx1 arm G at +600ms
          tx1 arm H at +32100ms
        +600ms timers
          tx1 send SIP/2.0 486 Busy Here (1 INVITE, to-tag gk1) to 127.0.0.1:5080 over Udp
          tx1 arm G at +1600ms
        +1600ms timers
          tx1 send SIP/2.0 486 Busy Here (1 INVITE, to-tag gk1) to 127.0.0.1:5080 over Udp
          tx1 arm G at +3600ms
        +3600ms timers
          tx1 send SIP/2.0 486 Busy Here (1 INVITE, to-tag gk1) to 127.0.0.1:5080 over Udp
          tx1 arm G at +7600ms
        +7600ms timers
          tx1 send SIP/2.0 486 Busy Here (1 INVITE, to-tag gk1) to 127.0.0.1:5080 over Udp
          tx1 arm G at +11600ms
        +11600ms timers
          tx1 send SIP/2.0 486 Busy Here (1 INVITE, to-tag gk1) to 127.0.0.1:5080 over Udp
          tx1 arm G at +15600ms
        +15600ms timers
          tx1 send SIP/2.0 486 Busy Here (1 INVITE, to-tag gk1) to 127.0.0.1:5080 over Udp
          tx1 arm G at +19600ms
        +19600ms timers
          tx1 send SIP/2.0 486 Busy Here (1 INVITE, to-tag gk1) to 127.0.0.1:5080 over Udp
          tx1 arm G at +23600ms
        +23600ms timers
          tx1 send SIP/2.0 486 Busy Here (1 INVITE, to-tag gk1) to 127.0.0.1:5080 over Udp
          tx1 arm G at +27600ms
        +27600ms timers
          tx1 send SIP/2.0 486 Busy Here (1 INVITE, to-tag gk1) to 127.0.0.1:5080 over Udp
          tx1 arm G at +31600ms
        +31600ms timers
          tx1 send SIP/2.0 486 Busy Here (1 INVITE, to-tag gk1) to 127.0.0.1:5080 over Udp
          tx1 arm G at +35600ms
        +32100ms timers
          TU: tx1 got no ACK
          TU: tx1 terminated
    "#]]
    .assert_eq(&trace.log);
}

#[test]
fn non_invite_server_absorbs_with_timer_j() {
    let options = INVITE
        .replace("INVITE", "OPTIONS")
        .replace("Contact: <sip:+81312345678@127.0.0.1:5080>\n", "");
    let mut trace = Trace::new();
    let outputs = trace.layer.received(
        message(&options),
        CARRIER.parse().unwrap(),
        Transport::Udp,
        trace.instant(),
    );
    trace.record("receive OPTIONS", &outputs);
    let (tx, request) = trace.last_request(&outputs).unwrap();
    trace.receive(500, &options, CARRIER, Transport::Udp);
    trace.respond(600, tx, &request, 200, "OK");
    trace.receive(1500, &options, CARRIER, Transport::Udp);
    trace.advance(40_000);
    trace.receive(40_100, &options, CARRIER, Transport::Udp);
    expect![[r#"
        +0ms receive OPTIONS
          TU: request OPTIONS on tx1 from 127.0.0.1:5080 (top Via SIP/2.0/UDP 127.0.0.1:5080;branch=z9hG4bKcarrier1;rport=5080;received=127.0.0.1)
        +500ms receive OPTIONS sip:service@127.0.0.1:5060 SIP/2.0
        +600ms TU responds 200 on tx1
          tx1 send SIP/2.0 200 OK (1 OPTIONS, to-tag gk1) to 127.0.0.1:5080 over Udp
          tx1 arm J at +32600ms
        +1500ms receive OPTIONS sip:service@127.0.0.1:5060 SIP/2.0
          tx1 send SIP/2.0 200 OK (1 OPTIONS, to-tag gk1) to 127.0.0.1:5080 over Udp
        +32600ms timers
          TU: tx1 terminated
        +40100ms receive OPTIONS sip:service@127.0.0.1:5060 SIP/2.0
          TU: request OPTIONS on tx2 from 127.0.0.1:5080 (top Via SIP/2.0/UDP 127.0.0.1:5080;branch=z9hG4bKcarrier1;rport=5080;received=127.0.0.1)
    "#]]
    .assert_eq(&trace.log);
}

fn outgoing(method: &Method) -> Request {
    let text = format!(
        "
{method} sip:agent1@127.0.0.1:5090 SIP/2.0
Via: SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bKgk{method}
Max-Forwards: 70
From: <sip:service@genkan.example>;tag=gk9
To: <sip:agent1@genkan.example>
Call-ID: leg-2@genkan.example
CSeq: 5 {method}
Contact: <sip:service@127.0.0.1:5060>
Content-Length: 0

"
    );
    request(&text)
}

fn reply(request: &Request, status: u16, reason: &str) -> String {
    let mut response = response_to(request, status, reason);
    if status > 100 {
        response = response.with_to_tag("ph1");
    }
    String::from_utf8(response.to_bytes())
        .unwrap()
        .replace("\r\n", "\n")
}

#[test]
fn non_invite_client_retransmits_with_timer_e_and_gives_up_at_f() {
    let mut trace = Trace::new();
    let bye = outgoing(&Method::Bye);
    trace.send(0, bye, PHONE, Transport::Udp);
    trace.advance(40_000);
    expect![[r#"
        +0ms TU sends BYE sip:agent1@127.0.0.1:5090
          tx1 send BYE sip:agent1@127.0.0.1:5090 SIP/2.0 (5 BYE) to 127.0.0.1:5090 over Udp
          tx1 arm E at +500ms
          tx1 arm F at +32000ms
        +500ms timers
          tx1 send BYE sip:agent1@127.0.0.1:5090 SIP/2.0 (5 BYE) to 127.0.0.1:5090 over Udp
          tx1 arm E at +1500ms
        +1500ms timers
          tx1 send BYE sip:agent1@127.0.0.1:5090 SIP/2.0 (5 BYE) to 127.0.0.1:5090 over Udp
          tx1 arm E at +3500ms
        +3500ms timers
          tx1 send BYE sip:agent1@127.0.0.1:5090 SIP/2.0 (5 BYE) to 127.0.0.1:5090 over Udp
          tx1 arm E at +7500ms
        +7500ms timers
          tx1 send BYE sip:agent1@127.0.0.1:5090 SIP/2.0 (5 BYE) to 127.0.0.1:5090 over Udp
          tx1 arm E at +11500ms
        +11500ms timers
          tx1 send BYE sip:agent1@127.0.0.1:5090 SIP/2.0 (5 BYE) to 127.0.0.1:5090 over Udp
          tx1 arm E at +15500ms
        +15500ms timers
          tx1 send BYE sip:agent1@127.0.0.1:5090 SIP/2.0 (5 BYE) to 127.0.0.1:5090 over Udp
          tx1 arm E at +19500ms
        +19500ms timers
          tx1 send BYE sip:agent1@127.0.0.1:5090 SIP/2.0 (5 BYE) to 127.0.0.1:5090 over Udp
          tx1 arm E at +23500ms
        +23500ms timers
          tx1 send BYE sip:agent1@127.0.0.1:5090 SIP/2.0 (5 BYE) to 127.0.0.1:5090 over Udp
          tx1 arm E at +27500ms
        +27500ms timers
          tx1 send BYE sip:agent1@127.0.0.1:5090 SIP/2.0 (5 BYE) to 127.0.0.1:5090 over Udp
          tx1 arm E at +31500ms
        +31500ms timers
          tx1 send BYE sip:agent1@127.0.0.1:5090 SIP/2.0 (5 BYE) to 127.0.0.1:5090 over Udp
          tx1 arm E at +35500ms
        +32000ms timers
          TU: tx1 timed out
          TU: tx1 terminated
    "#]]
    .assert_eq(&trace.log);
}

#[test]
fn non_invite_client_completes_and_waits_timer_k() {
    let mut trace = Trace::new();
    let bye = outgoing(&Method::Bye);
    trace.send(0, bye.clone(), PHONE, Transport::Udp);
    trace.receive(700, &reply(&bye, 100, "Trying"), PHONE, Transport::Udp);
    trace.advance(6000);
    trace.receive(6100, &reply(&bye, 200, "OK"), PHONE, Transport::Udp);
    trace.receive(6200, &reply(&bye, 200, "OK"), PHONE, Transport::Udp);
    trace.advance(20_000);
    expect![[r#"
        +0ms TU sends BYE sip:agent1@127.0.0.1:5090
          tx1 send BYE sip:agent1@127.0.0.1:5090 SIP/2.0 (5 BYE) to 127.0.0.1:5090 over Udp
          tx1 arm E at +500ms
          tx1 arm F at +32000ms
        +500ms timers
          tx1 send BYE sip:agent1@127.0.0.1:5090 SIP/2.0 (5 BYE) to 127.0.0.1:5090 over Udp
          tx1 arm E at +1500ms
        +700ms receive SIP/2.0 100 Trying
          TU: response 100 Trying on tx1
        +1500ms timers
          tx1 send BYE sip:agent1@127.0.0.1:5090 SIP/2.0 (5 BYE) to 127.0.0.1:5090 over Udp
          tx1 arm E at +5500ms
        +5500ms timers
          tx1 send BYE sip:agent1@127.0.0.1:5090 SIP/2.0 (5 BYE) to 127.0.0.1:5090 over Udp
          tx1 arm E at +9500ms
        +6100ms receive SIP/2.0 200 OK
          TU: response 200 OK on tx1
          tx1 arm K at +11100ms
        +6200ms receive SIP/2.0 200 OK
        +11100ms timers
          TU: tx1 terminated
    "#]]
    .assert_eq(&trace.log);
}

#[test]
fn invite_client_retransmits_until_ringing_and_acks_a_busy() {
    let mut trace = Trace::new();
    let invite = outgoing(&Method::Invite);
    trace.send(0, invite.clone(), PHONE, Transport::Udp);
    trace.receive(2000, &reply(&invite, 180, "Ringing"), PHONE, Transport::Udp);
    trace.receive(
        5000,
        &reply(&invite, 486, "Busy Here"),
        PHONE,
        Transport::Udp,
    );
    trace.receive(
        5100,
        &reply(&invite, 486, "Busy Here"),
        PHONE,
        Transport::Udp,
    );
    trace.advance(40_000);
    expect![[r#"
        +0ms TU sends INVITE sip:agent1@127.0.0.1:5090
          tx1 send INVITE sip:agent1@127.0.0.1:5090 SIP/2.0 (5 INVITE) to 127.0.0.1:5090 over Udp
          tx1 arm A at +500ms
          tx1 arm B at +32000ms
        +500ms timers
          tx1 send INVITE sip:agent1@127.0.0.1:5090 SIP/2.0 (5 INVITE) to 127.0.0.1:5090 over Udp
          tx1 arm A at +1500ms
        +1500ms timers
          tx1 send INVITE sip:agent1@127.0.0.1:5090 SIP/2.0 (5 INVITE) to 127.0.0.1:5090 over Udp
          tx1 arm A at +3500ms
        +2000ms receive SIP/2.0 180 Ringing
          TU: response 180 Ringing on tx1
        +5000ms receive SIP/2.0 486 Busy Here
          tx1 send ACK sip:agent1@127.0.0.1:5090 SIP/2.0 (5 ACK, to-tag ph1) to 127.0.0.1:5090 over Udp
          TU: response 486 Busy Here on tx1
          tx1 arm D at +37000ms
        +5100ms receive SIP/2.0 486 Busy Here
          tx1 send ACK sip:agent1@127.0.0.1:5090 SIP/2.0 (5 ACK, to-tag ph1) to 127.0.0.1:5090 over Udp
        +37000ms timers
          TU: tx1 terminated
    "#]]
    .assert_eq(&trace.log);
}

#[test]
fn invite_client_times_out_with_timer_b() {
    let mut trace = Trace::new();
    trace.send(0, outgoing(&Method::Invite), PHONE, Transport::Udp);
    trace.advance(33_000);
    expect![[r#"
        +0ms TU sends INVITE sip:agent1@127.0.0.1:5090
          tx1 send INVITE sip:agent1@127.0.0.1:5090 SIP/2.0 (5 INVITE) to 127.0.0.1:5090 over Udp
          tx1 arm A at +500ms
          tx1 arm B at +32000ms
        +500ms timers
          tx1 send INVITE sip:agent1@127.0.0.1:5090 SIP/2.0 (5 INVITE) to 127.0.0.1:5090 over Udp
          tx1 arm A at +1500ms
        +1500ms timers
          tx1 send INVITE sip:agent1@127.0.0.1:5090 SIP/2.0 (5 INVITE) to 127.0.0.1:5090 over Udp
          tx1 arm A at +3500ms
        +3500ms timers
          tx1 send INVITE sip:agent1@127.0.0.1:5090 SIP/2.0 (5 INVITE) to 127.0.0.1:5090 over Udp
          tx1 arm A at +7500ms
        +7500ms timers
          tx1 send INVITE sip:agent1@127.0.0.1:5090 SIP/2.0 (5 INVITE) to 127.0.0.1:5090 over Udp
          tx1 arm A at +15500ms
        +15500ms timers
          tx1 send INVITE sip:agent1@127.0.0.1:5090 SIP/2.0 (5 INVITE) to 127.0.0.1:5090 over Udp
          tx1 arm A at +31500ms
        +31500ms timers
          tx1 send INVITE sip:agent1@127.0.0.1:5090 SIP/2.0 (5 INVITE) to 127.0.0.1:5090 over Udp
          tx1 arm A at +63500ms
        +32000ms timers
          TU: tx1 timed out
          TU: tx1 terminated
    "#]]
    .assert_eq(&trace.log);
}

#[test]
fn invite_client_passes_every_2xx_until_timer_m() {
    let mut trace = Trace::new();
    let invite = outgoing(&Method::Invite);
    trace.send(0, invite.clone(), PHONE, Transport::Udp);
    trace.receive(300, &reply(&invite, 200, "OK"), PHONE, Transport::Udp);
    trace.receive(800, &reply(&invite, 200, "OK"), PHONE, Transport::Udp);
    trace.advance(40_000);
    trace.receive(40_100, &reply(&invite, 200, "OK"), PHONE, Transport::Udp);
    expect![[r#"
        +0ms TU sends INVITE sip:agent1@127.0.0.1:5090
          tx1 send INVITE sip:agent1@127.0.0.1:5090 SIP/2.0 (5 INVITE) to 127.0.0.1:5090 over Udp
          tx1 arm A at +500ms
          tx1 arm B at +32000ms
        +300ms receive SIP/2.0 200 OK
          TU: response 200 OK on tx1
          tx1 arm M at +32300ms
        +800ms receive SIP/2.0 200 OK
          TU: response 200 OK on tx1
        +32300ms timers
          TU: tx1 terminated
        +40100ms receive SIP/2.0 200 OK
    "#]]
    .assert_eq(&trace.log);
}

#[test]
fn cancelling_our_invite_sends_cancel_then_acks_the_487() {
    let mut trace = Trace::new();
    let invite = outgoing(&Method::Invite);
    trace.send(0, invite.clone(), PHONE, Transport::Udp);
    trace.receive(100, &reply(&invite, 180, "Ringing"), PHONE, Transport::Udp);
    let cancel = cancel_for(&invite);
    trace.send(15_000, cancel.clone(), PHONE, Transport::Udp);
    trace.receive(15_050, &reply(&cancel, 200, "OK"), PHONE, Transport::Udp);
    trace.receive(
        15_060,
        &reply(&invite, 487, "Request Terminated"),
        PHONE,
        Transport::Udp,
    );
    trace.advance(60_000);
    expect![[r#"
        +0ms TU sends INVITE sip:agent1@127.0.0.1:5090
          tx1 send INVITE sip:agent1@127.0.0.1:5090 SIP/2.0 (5 INVITE) to 127.0.0.1:5090 over Udp
          tx1 arm A at +500ms
          tx1 arm B at +32000ms
        +100ms receive SIP/2.0 180 Ringing
          TU: response 180 Ringing on tx1
        +15000ms TU sends CANCEL sip:agent1@127.0.0.1:5090
          tx2 send CANCEL sip:agent1@127.0.0.1:5090 SIP/2.0 (5 CANCEL) to 127.0.0.1:5090 over Udp
          tx2 arm E at +15500ms
          tx2 arm F at +47000ms
        +15050ms receive SIP/2.0 200 OK
          TU: response 200 OK on tx2
          tx2 arm K at +20050ms
        +15060ms receive SIP/2.0 487 Request Terminated
          tx1 send ACK sip:agent1@127.0.0.1:5090 SIP/2.0 (5 ACK, to-tag ph1) to 127.0.0.1:5090 over Udp
          TU: response 487 Request Terminated on tx1
          tx1 arm D at +47060ms
        +20050ms timers
          TU: tx2 terminated
        +47060ms timers
          TU: tx1 terminated
    "#]]
    .assert_eq(&trace.log);
}

#[test]
fn reliable_transports_run_no_retransmission_timers() {
    let mut trace = Trace::new();
    trace.advance(0);
    let outputs = trace.layer.received(
        message(INVITE),
        CARRIER.parse().unwrap(),
        Transport::Tcp,
        trace.instant(),
    );
    trace.record("receive INVITE over TCP", &outputs);
    let (tx, invite) = trace.last_request(&outputs).unwrap();
    trace.respond(10, tx, &invite, 603, "Decline");
    trace.receive(20, ACK_FOR_ERROR, CARRIER, Transport::Tcp);
    let bye = outgoing(&Method::Bye);
    trace.send(30, bye.clone(), PHONE, Transport::Tcp);
    trace.receive(40, &reply(&bye, 200, "OK"), PHONE, Transport::Tcp);
    expect![[r#"
        +0ms receive INVITE over TCP
          tx1 send SIP/2.0 100 Trying (1 INVITE) to 127.0.0.1:5080 over Tcp
          TU: request INVITE on tx1 from 127.0.0.1:5080 (top Via SIP/2.0/UDP 127.0.0.1:5080;branch=z9hG4bKcarrier1;rport=5080;received=127.0.0.1)
        +10ms TU responds 603 on tx1
          tx1 send SIP/2.0 603 Decline (1 INVITE, to-tag gk1) to 127.0.0.1:5080 over Tcp
          tx1 arm H at +32010ms
        +20ms receive ACK sip:service@127.0.0.1:5060 SIP/2.0
          TU: tx1 terminated
        +30ms TU sends BYE sip:agent1@127.0.0.1:5090
          tx2 send BYE sip:agent1@127.0.0.1:5090 SIP/2.0 (5 BYE) to 127.0.0.1:5090 over Tcp
          tx2 arm F at +32030ms
        +40ms receive SIP/2.0 200 OK
          TU: response 200 OK on tx2
          TU: tx2 terminated
    "#]]
    .assert_eq(&trace.log);
    assert!(trace.layer.is_empty());
}

/// genkan calling a phone that registered over TCP: no timer A, the ACK for a decline goes
/// on the same connection and the transaction ends at once (timer D is zero), and a 2xx
/// still waits out timer M, which RFC 6026 runs on every transport.
#[test]
fn an_invite_over_tcp_is_never_retransmitted_and_a_decline_ends_it_at_once() {
    let mut trace = Trace::new();
    let invite = outgoing(&Method::Invite);
    trace.send(0, invite.clone(), PHONE, Transport::Tcp);
    trace.receive(2000, &reply(&invite, 180, "Ringing"), PHONE, Transport::Tcp);
    trace.receive(
        5000,
        &reply(&invite, 486, "Busy Here"),
        PHONE,
        Transport::Tcp,
    );
    let mut second = outgoing(&Method::Invite);
    second.headers.via[0].set_param("branch", Some("z9hG4bKgkSecond"));
    trace.send(6000, second.clone(), PHONE, Transport::Tcp);
    trace.receive(6100, &reply(&second, 200, "OK"), PHONE, Transport::Tcp);
    trace.advance(60_000);
    expect![[r#"
        +0ms TU sends INVITE sip:agent1@127.0.0.1:5090
          tx1 send INVITE sip:agent1@127.0.0.1:5090 SIP/2.0 (5 INVITE) to 127.0.0.1:5090 over Tcp
          tx1 arm B at +32000ms
        +2000ms receive SIP/2.0 180 Ringing
          TU: response 180 Ringing on tx1
        +5000ms receive SIP/2.0 486 Busy Here
          tx1 send ACK sip:agent1@127.0.0.1:5090 SIP/2.0 (5 ACK, to-tag ph1) to 127.0.0.1:5090 over Tcp
          TU: response 486 Busy Here on tx1
          TU: tx1 terminated
        +6000ms TU sends INVITE sip:agent1@127.0.0.1:5090
          tx2 send INVITE sip:agent1@127.0.0.1:5090 SIP/2.0 (5 INVITE) to 127.0.0.1:5090 over Tcp
          tx2 arm B at +38000ms
        +6100ms receive SIP/2.0 200 OK
          TU: response 200 OK on tx2
          tx2 arm M at +38100ms
        +38100ms timers
          TU: tx2 terminated
    "#]]
    .assert_eq(&trace.log);
    assert!(trace.layer.is_empty());
}

#[test]
fn the_layer_refuses_what_the_tu_gets_wrong() {
    let mut trace = Trace::new();
    let now = trace.instant();
    let to: SocketAddr = PHONE.parse().unwrap();
    let mut ack = outgoing(&Method::Invite);
    ack.method = Method::Ack;
    assert_eq!(
        trace
            .layer
            .request(ack, to, Transport::Udp, now)
            .unwrap_err(),
        sip::Error::AckIsNotATransaction
    );
    let mut no_branch = outgoing(&Method::Bye);
    no_branch.headers.via[0].params.clear();
    assert_eq!(
        trace
            .layer
            .request(no_branch, to, Transport::Udp, now)
            .unwrap_err(),
        sip::Error::NoBranch
    );
    trace
        .layer
        .request(outgoing(&Method::Bye), to, Transport::Udp, now)
        .unwrap();
    assert!(matches!(
        trace
            .layer
            .request(outgoing(&Method::Bye), to, Transport::Udp, now),
        Err(sip::Error::BranchInUse(_))
    ));
    let (tx, invite) = incoming_call(&mut trace);
    let ok = response_to(&invite, 200, "OK").with_to_tag("x");
    trace.layer.respond(tx, ok, now).unwrap();
    let busy = response_to(&invite, 486, "Busy Here");
    assert_eq!(
        trace.layer.respond(tx, busy, now),
        Err(sip::Error::NoSuchTransaction(tx))
    );
}

#[test]
fn cancel_before_any_tag_gives_200_and_487_one_derived_tag() {
    let mut trace = Trace::new();
    incoming_call(&mut trace);
    trace.receive(300, CANCEL, CARRIER, Transport::Udp);
    expect![[r#"
        +0ms receive INVITE
          tx1 send SIP/2.0 100 Trying (1 INVITE) to 127.0.0.1:5080 over Udp
          TU: request INVITE on tx1 from 127.0.0.1:5080 (top Via SIP/2.0/UDP 127.0.0.1:5080;branch=z9hG4bKcarrier1;rport=5080;received=127.0.0.1)
        +300ms receive CANCEL sip:service@127.0.0.1:5060 SIP/2.0
          tx2 send SIP/2.0 200 OK (1 CANCEL, to-tag 565dd9dbcc27) to 127.0.0.1:5080 over Udp
          tx2 arm J at +32300ms
          tx1 send SIP/2.0 487 Request Terminated (1 INVITE, to-tag 565dd9dbcc27) to 127.0.0.1:5080 over Udp
          tx1 arm G at +800ms
          tx1 arm H at +32300ms
          TU: tx1 cancelled
    "#]]
    .assert_eq(&trace.log);
}

#[test]
fn without_rport_responses_go_to_the_via_port_and_stray_acks_reach_the_tu() {
    let mut trace = Trace::new();
    let no_rport = INVITE.replace(";rport", "");
    trace.receive(0, &no_rport, "127.0.0.1:6000", Transport::Udp);
    let stray = ACK_FOR_2XX.replace("call-1@", "call-unknown@");
    trace.receive(10, &stray, CARRIER, Transport::Udp);
    expect![[r#"
        +0ms receive INVITE sip:service@127.0.0.1:5060 SIP/2.0
          tx1 send SIP/2.0 100 Trying (1 INVITE) to 127.0.0.1:5080 over Udp
          TU: request INVITE on tx1 from 127.0.0.1:6000 (top Via SIP/2.0/UDP 127.0.0.1:5080;branch=z9hG4bKcarrier1)
        +10ms receive ACK sip:service@127.0.0.1:5060 SIP/2.0
          TU: ACK (CSeq 1) for no transaction
    "#]]
    .assert_eq(&trace.log);
}
