//! The transaction layer of RFC 3261 §17 (with RFC 6026's Accepted states) as one pure
//! state machine for all transactions of an endpoint.
//!
//! Drive it with [`Transactions::received`] for every parsed message,
//! [`Transactions::respond`] and [`Transactions::request`] for what the TU sends, and
//! [`Transactions::timer`] whenever [`Transactions::next_timer`] has passed. Each call
//! returns [`Output`]s: messages to send, events for the TU, and timers armed (the last
//! only for logs; the deadline to sleep until is always `next_timer`).
//!
//! Beyond §17, the layer does three things a UAS core would otherwise repeat in every
//! call: it sends 100 Trying at once for every INVITE, it retransmits a 2xx to an INVITE
//! until the ACK arrives (§13.3.1.4, using timers G and L), and it answers CANCEL itself
//! (200 to the CANCEL, 487 to the INVITE if still unanswered, 481 if no INVITE matches,
//! §9.2), telling the TU with [`Event::Cancelled`].

mod client;
mod server;

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use crate::message::{Message, Method, Request, Response, Transport};

use client::Client;
use server::Server;

/// Identifies one transaction for the TU. Ids are never reused by one [`Transactions`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct TransactionId(u64);

impl fmt::Display for TransactionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "tx{}", self.0)
    }
}

/// Timer values (RFC 3261 Table 4). The others derive from these.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timers {
    /// Round-trip estimate (default 500 ms).
    pub t1: Duration,
    /// Longest retransmit interval for non-INVITE requests and INVITE responses (4 s).
    pub t2: Duration,
    /// Longest time a message stays in the network (5 s).
    pub t4: Duration,
    /// How long an INVITE client waits for response retransmissions (32 s).
    pub d: Duration,
}

impl Default for Timers {
    fn default() -> Self {
        Self {
            t1: Duration::from_millis(500),
            t2: Duration::from_secs(4),
            t4: Duration::from_secs(5),
            d: Duration::from_secs(32),
        }
    }
}

impl Timers {
    fn t1x64(&self) -> Duration {
        self.t1 * 64
    }
}

/// The timers of RFC 3261 §17 and RFC 6026.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Timer {
    /// INVITE client: retransmit the INVITE (unreliable transports).
    A,
    /// INVITE client: give up waiting for any response.
    B,
    /// INVITE client: stop absorbing final-response retransmissions.
    D,
    /// Non-INVITE client: retransmit the request (unreliable transports).
    E,
    /// Non-INVITE client: give up waiting for a final response.
    F,
    /// INVITE server: retransmit the final response until the ACK.
    G,
    /// INVITE server: give up waiting for the ACK to a non-2xx.
    H,
    /// INVITE server: stop absorbing ACK retransmissions.
    I,
    /// Non-INVITE server: stop absorbing request retransmissions.
    J,
    /// Non-INVITE client: stop absorbing response retransmissions.
    K,
    /// INVITE server after a 2xx: stop waiting for the ACK and INVITE retransmissions.
    L,
    /// INVITE client after a 2xx: stop passing 2xx retransmissions to the TU.
    M,
}

const ALL_TIMERS: [Timer; 12] = [
    Timer::A,
    Timer::B,
    Timer::D,
    Timer::E,
    Timer::F,
    Timer::G,
    Timer::H,
    Timer::I,
    Timer::J,
    Timer::K,
    Timer::L,
    Timer::M,
];

/// What the layer asks its driver to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Output {
    /// Send a message.
    Send {
        /// The transaction sending it.
        transaction: TransactionId,
        /// Where to.
        to: SocketAddr,
        /// Over what (on a stream, the connection the request came on).
        transport: Transport,
        /// The message.
        message: Message,
    },
    /// Tell the TU.
    Event(Event),
    /// A timer was armed (for logs and tests; sleep until [`Transactions::next_timer`]).
    Armed {
        /// The transaction.
        transaction: TransactionId,
        /// Which timer.
        timer: Timer,
        /// When it fires.
        at: Instant,
    },
}

/// What the layer tells the transaction user.
#[derive(Debug, Clone, PartialEq, Eq)]
#[allow(clippy::large_enum_variant)] // events are consumed at once, never stored in bulk
pub enum Event {
    /// A new request (not ACK, not CANCEL); answer it with [`Transactions::respond`].
    Request {
        /// The server transaction.
        transaction: TransactionId,
        /// The request, its top Via stamped with `received`/`rport`.
        request: Request,
        /// Where it came from.
        source: SocketAddr,
        /// What it came over.
        transport: Transport,
    },
    /// An ACK to a 2xx (a transaction of its own in RFC 3261 terms). `transaction` is the
    /// INVITE it acknowledges when the layer was retransmitting that 2xx, `None` for an
    /// ACK the layer cannot place (the TU may know the dialog).
    Ack {
        /// The INVITE server transaction, if matched.
        transaction: Option<TransactionId>,
        /// The ACK.
        request: Request,
        /// Where it came from.
        source: SocketAddr,
    },
    /// A CANCEL matched an INVITE that had no final response; the layer has answered
    /// the CANCEL with 200 and the INVITE with 487.
    Cancelled {
        /// The INVITE server transaction.
        invite: TransactionId,
    },
    /// A response to one of our requests.
    Response {
        /// The client transaction.
        transaction: TransactionId,
        /// The response.
        response: Response,
    },
    /// No final response arrived in time (timer B or F).
    Timeout {
        /// The client transaction.
        transaction: TransactionId,
    },
    /// No ACK arrived for our final response (timer H, or L after a 2xx: the TU should
    /// end the session with BYE).
    NoAck {
        /// The INVITE server transaction.
        transaction: TransactionId,
    },
    /// The transaction has ended; forget its id.
    Terminated {
        /// The transaction.
        transaction: TransactionId,
    },
}

/// All transactions of one endpoint.
#[derive(Debug)]
pub struct Transactions {
    timers: Timers,
    next_id: u64,
    servers: BTreeMap<TransactionId, Server>,
    clients: BTreeMap<TransactionId, Client>,
    server_keys: BTreeMap<(String, Method), TransactionId>,
    client_keys: BTreeMap<(String, Method), TransactionId>,
    /// INVITE server transactions that sent a 2xx, by (Call-ID, CSeq number, From tag),
    /// which is how the ACK for a 2xx (a new branch) finds them.
    accepted: BTreeMap<(String, u32, String), TransactionId>,
    armed: BTreeMap<(TransactionId, Timer), Instant>,
    queue: BTreeSet<(Instant, TransactionId, Timer)>,
}

impl Transactions {
    /// An empty layer. Timers are kept between 1 ms and an hour, so they always move
    /// forward and deadlines never overflow.
    pub fn new(mut timers: Timers) -> Self {
        let hour = Duration::from_secs(3600);
        timers.t1 = timers.t1.clamp(Duration::from_millis(1), hour);
        timers.t2 = timers.t2.clamp(timers.t1, hour);
        timers.t4 = timers.t4.min(hour);
        timers.d = timers.d.min(hour);
        Self {
            timers,
            next_id: 1,
            servers: BTreeMap::new(),
            clients: BTreeMap::new(),
            server_keys: BTreeMap::new(),
            client_keys: BTreeMap::new(),
            accepted: BTreeMap::new(),
            armed: BTreeMap::new(),
            queue: BTreeSet::new(),
        }
    }

    /// Feeds a parsed message that arrived from `source` over `transport`.
    pub fn received(
        &mut self,
        message: Message,
        source: SocketAddr,
        transport: Transport,
        now: Instant,
    ) -> Vec<Output> {
        let mut out = Vec::new();
        match message {
            Message::Request(request) => {
                self.server_received(request, source, transport, now, &mut out)
            }
            Message::Response(response) => self.client_received(response, now, &mut out),
        }
        out
    }

    /// Fires every timer due at `now`.
    pub fn timer(&mut self, now: Instant) -> Vec<Output> {
        let mut out = Vec::new();
        while let Some(&(at, id, timer)) = self.queue.first() {
            if at > now {
                break;
            }
            self.queue.pop_first();
            self.armed.remove(&(id, timer));
            if self.servers.contains_key(&id) {
                self.server_timer(id, timer, now, &mut out);
            } else {
                self.client_timer(id, timer, now, &mut out);
            }
        }
        out
    }

    /// The earliest armed timer.
    pub fn next_timer(&self) -> Option<Instant> {
        self.queue.first().map(|(at, _, _)| *at)
    }

    /// How many transactions are alive.
    pub fn len(&self) -> usize {
        self.servers.len() + self.clients.len()
    }

    /// Whether no transaction is alive.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn new_id(&mut self) -> TransactionId {
        let id = TransactionId(self.next_id);
        self.next_id += 1;
        id
    }

    fn arm(&mut self, id: TransactionId, timer: Timer, at: Instant, out: &mut Vec<Output>) {
        if let Some(old) = self.armed.insert((id, timer), at) {
            self.queue.remove(&(old, id, timer));
        }
        self.queue.insert((at, id, timer));
        out.push(Output::Armed {
            transaction: id,
            timer,
            at,
        });
    }

    fn disarm(&mut self, id: TransactionId, timers: &[Timer]) {
        for timer in timers {
            if let Some(at) = self.armed.remove(&(id, *timer)) {
                self.queue.remove(&(at, id, *timer));
            }
        }
    }
}

/// Transaction matching compares branches case-insensitively, and falls back to the
/// RFC 2543 fields when the branch lacks the magic cookie.
fn branch_key(request_or_response: &crate::message::Headers) -> Option<String> {
    let via = request_or_response.via.first()?;
    match via.branch() {
        Some(branch) if branch.starts_with("z9hG4bK") => Some(format!(
            "{}|{}",
            branch.to_ascii_lowercase(),
            via.sent_by().to_ascii_lowercase()
        )),
        branch => {
            let headers = request_or_response;
            Some(format!(
                "2543|{}|{}|{}|{}|{}",
                headers.call_id,
                headers.cseq.seq,
                headers.from.tag().unwrap_or_default(),
                via.sent_by().to_ascii_lowercase(),
                branch.unwrap_or_default()
            ))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::message::Message;
    use crate::parse::parse;

    fn headers(via: &str) -> crate::message::Headers {
        let text = format!(
            "OPTIONS sip:a@b SIP/2.0\r\nVia: {via}\r\nFrom: <sip:c@d>;tag=f\r\nTo: <sip:a@b>\r\nCall-ID: k\r\nCSeq: 3 OPTIONS\r\nContent-Length: 0\r\n\r\n"
        );
        match parse(text.as_bytes(), Transport::Udp).unwrap() {
            Message::Request(request) => request.headers,
            Message::Response(_) => panic!("response"),
        }
    }

    #[test]
    fn branches_match_case_insensitively_and_old_peers_fall_back_to_rfc_2543_fields() {
        let upper = branch_key(&headers("SIP/2.0/UDP H.example;branch=z9hG4bKAbC"));
        let lower = branch_key(&headers("SIP/2.0/UDP h.example;branch=z9hG4bKabc"));
        assert_eq!(upper, lower);
        let other_host = branch_key(&headers("SIP/2.0/UDP g.example;branch=z9hG4bKabc"));
        assert_ne!(upper, other_host);
        let old = branch_key(&headers("SIP/2.0/UDP h.example;branch=1")).unwrap();
        assert_eq!(old, "2543|k|3|f|h.example|1");
    }

    #[test]
    fn timers_are_clamped_so_deadlines_move_forward_and_never_overflow() {
        let layer = Transactions::new(Timers {
            t1: Duration::ZERO,
            t2: Duration::MAX,
            t4: Duration::MAX,
            d: Duration::MAX,
        });
        assert_eq!(layer.timers.t1, Duration::from_millis(1));
        assert_eq!(layer.timers.t2, Duration::from_secs(3600));
        assert!(layer.is_empty() && layer.next_timer().is_none());
    }
}
