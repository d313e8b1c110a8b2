//! Server transactions (RFC 3261 §17.2, RFC 6026 §7.1), CANCEL handling (§9.2) and the
//! retransmission of 2xx responses to INVITE until the ACK (§13.3.1.4).

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};

use super::{ALL_TIMERS, Event, Output, Timer, TransactionId, Transactions, branch_key};
use crate::Error;
use crate::header::Via;
use crate::message::{Message, Method, Request, Response, Transport, response_to};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Non-INVITE: waiting for the TU.
    Trying,
    /// A provisional response has been sent (INVITE starts here, with its 100).
    Proceeding,
    /// A final non-2xx response has been sent.
    Completed,
    /// INVITE: the ACK to a non-2xx arrived.
    Confirmed,
    /// INVITE: a 2xx has been sent.
    Accepted,
}

#[derive(Debug)]
pub(super) struct Server {
    invite: bool,
    state: State,
    request: Request,
    key: (String, Method),
    reply_to: SocketAddr,
    transport: Transport,
    last_response: Option<Response>,
    interval: Duration,
    acked: bool,
    accepted_key: Option<(String, u32, String)>,
}

impl Transactions {
    pub(super) fn server_received(
        &mut self,
        mut request: Request,
        source: SocketAddr,
        transport: Transport,
        now: Instant,
        out: &mut Vec<Output>,
    ) {
        let Some(top) = request.headers.via.first_mut() else {
            return;
        };
        stamp_via(top, source);
        let reply_to = response_target(source, transport, top);
        let Some(branch) = branch_key(&request.headers) else {
            return;
        };
        let class = match request.method {
            Method::Ack => Method::Invite,
            ref method => method.clone(),
        };
        let existing = self.server_keys.get(&(branch.clone(), class)).copied();
        match (&request.method, existing) {
            (Method::Ack, Some(id)) => self.server_ack(id, request, source, now, out),
            (Method::Ack, None) => self.stray_ack(request, source, out),
            (_, Some(id)) => self.server_retransmission(id, out),
            (Method::Cancel, None) => {
                self.server_cancel(request, branch, reply_to, transport, now, out)
            }
            (method, None) => {
                let invite = *method == Method::Invite;
                let key = (branch, request.method.clone());
                let id = self.new_server(request.clone(), key, reply_to, transport);
                if invite {
                    let trying = response_to(&request, 100, "Trying");
                    self.server_send(id, trying, out);
                }
                out.push(Output::Event(Event::Request {
                    transaction: id,
                    request,
                    source,
                    transport,
                }));
            }
        }
    }

    /// Sends the TU's response on a server transaction.
    pub fn respond(
        &mut self,
        transaction: TransactionId,
        response: Response,
        now: Instant,
    ) -> Result<Vec<Output>, Error> {
        let mut out = Vec::new();
        let state = self
            .servers
            .get(&transaction)
            .map(|server| (server.invite, server.state));
        let status = response.status;
        let final_response = status >= 200;
        match state {
            Some((_, State::Trying | State::Proceeding)) if !final_response => {
                self.set_state(transaction, State::Proceeding);
                self.server_send(transaction, response, &mut out);
            }
            Some((true, State::Proceeding)) if status < 300 => {
                self.server_send(transaction, response, &mut out);
                self.accept(transaction, now, &mut out);
            }
            Some((true, State::Accepted)) if (200..300).contains(&status) => {
                self.server_send(transaction, response, &mut out);
            }
            Some((invite, State::Trying | State::Proceeding)) => {
                self.set_state(transaction, State::Completed);
                self.server_send(transaction, response, &mut out);
                let reliable = self
                    .servers
                    .get(&transaction)
                    .is_none_or(|server| server.transport.is_reliable());
                match (invite, reliable) {
                    (true, false) => {
                        self.arm(transaction, Timer::G, now + self.timers.t1, &mut out);
                        self.arm(transaction, Timer::H, now + self.timers.t1x64(), &mut out);
                    }
                    (true, true) => {
                        self.arm(transaction, Timer::H, now + self.timers.t1x64(), &mut out)
                    }
                    (false, false) => {
                        self.arm(transaction, Timer::J, now + self.timers.t1x64(), &mut out)
                    }
                    (false, true) => self.end_server(transaction, &mut out),
                }
            }
            _ => return Err(Error::NoSuchTransaction(transaction)),
        }
        Ok(out)
    }

    pub(super) fn server_timer(
        &mut self,
        id: TransactionId,
        timer: Timer,
        now: Instant,
        out: &mut Vec<Output>,
    ) {
        let Some(server) = self.servers.get_mut(&id) else {
            return;
        };
        let (state, acked) = (server.state, server.acked);
        match (timer, state) {
            (Timer::G, State::Completed | State::Accepted) if !acked => {
                let interval = (server.interval * 2).min(self.timers.t2);
                server.interval = interval;
                let response = server.last_response.clone();
                if let Some(response) = response {
                    self.server_send(id, response, out);
                }
                self.arm(id, Timer::G, now + interval, out);
            }
            (Timer::H, State::Completed) => {
                out.push(Output::Event(Event::NoAck { transaction: id }));
                self.end_server(id, out);
            }
            (Timer::L, State::Accepted) => {
                if !acked {
                    out.push(Output::Event(Event::NoAck { transaction: id }));
                }
                self.end_server(id, out);
            }
            (Timer::I | Timer::J, _) => self.end_server(id, out),
            _ => {}
        }
    }

    fn new_server(
        &mut self,
        request: Request,
        key: (String, Method),
        reply_to: SocketAddr,
        transport: Transport,
    ) -> TransactionId {
        let id = self.new_id();
        let invite = request.method == Method::Invite;
        self.server_keys.insert(key.clone(), id);
        let server = Server {
            invite,
            state: if invite {
                State::Proceeding
            } else {
                State::Trying
            },
            request,
            key,
            reply_to,
            transport,
            last_response: None,
            interval: self.timers.t1,
            acked: false,
            accepted_key: None,
        };
        self.servers.insert(id, server);
        id
    }

    fn set_state(&mut self, id: TransactionId, state: State) {
        if let Some(server) = self.servers.get_mut(&id) {
            server.state = state;
        }
    }

    fn server_send(&mut self, id: TransactionId, response: Response, out: &mut Vec<Output>) {
        let Some(server) = self.servers.get_mut(&id) else {
            return;
        };
        server.last_response = Some(response.clone());
        out.push(Output::Send {
            transaction: id,
            to: server.reply_to,
            transport: server.transport,
            message: Message::Response(response),
        });
    }

    /// After a 2xx: retransmit it until the ACK (on every transport, as §13.3.1.4 asks,
    /// because a hop further on may be UDP), and keep absorbing INVITE retransmissions
    /// until timer L.
    fn accept(&mut self, id: TransactionId, now: Instant, out: &mut Vec<Output>) {
        let Some(server) = self.servers.get_mut(&id) else {
            return;
        };
        server.state = State::Accepted;
        let headers = &server.request.headers;
        let key = (
            headers.call_id.clone(),
            headers.cseq.seq,
            headers.from.tag().unwrap_or_default().to_owned(),
        );
        server.accepted_key = Some(key.clone());
        self.accepted.insert(key, id);
        self.arm(id, Timer::G, now + self.timers.t1, out);
        self.arm(id, Timer::L, now + self.timers.t1x64(), out);
    }

    fn server_retransmission(&mut self, id: TransactionId, out: &mut Vec<Output>) {
        let Some(server) = self.servers.get(&id) else {
            return;
        };
        let resend = match server.state {
            State::Proceeding | State::Completed => server.last_response.clone(),
            State::Trying | State::Confirmed | State::Accepted => None,
        };
        if let Some(response) = resend {
            self.server_send(id, response, out);
        }
    }

    fn server_ack(
        &mut self,
        id: TransactionId,
        request: Request,
        source: SocketAddr,
        now: Instant,
        out: &mut Vec<Output>,
    ) {
        let Some(server) = self.servers.get(&id) else {
            return;
        };
        match server.state {
            State::Completed => {
                let reliable = server.transport.is_reliable();
                self.set_state(id, State::Confirmed);
                self.disarm(id, &[Timer::G, Timer::H]);
                if reliable {
                    self.end_server(id, out);
                } else {
                    self.arm(id, Timer::I, now + self.timers.t4, out);
                }
            }
            // Some peers reuse the INVITE's branch on the ACK for a 2xx.
            State::Accepted => self.ack_for_2xx(id, request, source, out),
            State::Trying | State::Proceeding | State::Confirmed => {}
        }
    }

    fn stray_ack(&mut self, request: Request, source: SocketAddr, out: &mut Vec<Output>) {
        let headers = &request.headers;
        let key = (
            headers.call_id.clone(),
            headers.cseq.seq,
            headers.from.tag().unwrap_or_default().to_owned(),
        );
        match self.accepted.get(&key).copied() {
            Some(id) => self.ack_for_2xx(id, request, source, out),
            None => out.push(Output::Event(Event::Ack {
                transaction: None,
                request,
                source,
            })),
        }
    }

    fn ack_for_2xx(
        &mut self,
        id: TransactionId,
        request: Request,
        source: SocketAddr,
        out: &mut Vec<Output>,
    ) {
        let Some(server) = self.servers.get_mut(&id) else {
            return;
        };
        if server.acked {
            return;
        }
        server.acked = true;
        self.disarm(id, &[Timer::G]);
        out.push(Output::Event(Event::Ack {
            transaction: Some(id),
            request,
            source,
        }));
    }

    fn server_cancel(
        &mut self,
        cancel: Request,
        branch: String,
        reply_to: SocketAddr,
        transport: Transport,
        now: Instant,
        out: &mut Vec<Output>,
    ) {
        let invite = self
            .server_keys
            .get(&(branch.clone(), Method::Invite))
            .copied()
            .filter(|invite| self.servers.contains_key(invite));
        // The INVITE's responses and the CANCEL's must carry the same To tag: the one
        // the TU already chose, or one derived from the branch.
        let (tag, terminated) = match invite.and_then(|invite| self.servers.get(&invite)) {
            Some(server) => {
                let chosen = server
                    .last_response
                    .as_ref()
                    .and_then(|response| response.headers.to.tag());
                let tag = chosen.map_or_else(|| derived_tag(&branch), str::to_owned);
                let unanswered = server.state == State::Proceeding;
                let terminated =
                    unanswered.then(|| response_to(&server.request, 487, "Request Terminated"));
                (tag, terminated)
            }
            None => (derived_tag(&branch), None),
        };
        let mut answer = match invite {
            Some(_) => response_to(&cancel, 200, "OK"),
            None => response_to(&cancel, 481, "Call/Transaction Does Not Exist"),
        };
        if answer.headers.to.tag().is_none() {
            answer = answer.with_to_tag(&tag);
        }
        let id = self.new_server(cancel, (branch, Method::Cancel), reply_to, transport);
        if let Ok(more) = self.respond(id, answer, now) {
            out.extend(more);
        }
        if let (Some(invite), Some(terminated)) = (invite, terminated) {
            if let Ok(more) = self.respond(invite, terminated.with_to_tag(&tag), now) {
                out.extend(more);
            }
            out.push(Output::Event(Event::Cancelled { invite }));
        }
    }

    fn end_server(&mut self, id: TransactionId, out: &mut Vec<Output>) {
        self.disarm(id, &ALL_TIMERS);
        if let Some(server) = self.servers.remove(&id) {
            self.server_keys.remove(&server.key);
            if let Some(key) = server.accepted_key {
                self.accepted.remove(&key);
            }
            out.push(Output::Event(Event::Terminated { transaction: id }));
        }
    }
}

/// Adds `received` when the packet's source differs from the sent-by host, and fills in
/// an empty `rport` (RFC 3261 §18.2.1, RFC 3581 §4).
fn stamp_via(via: &mut Via, source: SocketAddr) {
    let source_ip = source.ip().to_string();
    let host = via.host.trim_start_matches('[').trim_end_matches(']');
    let asks_rport = via.rport() == Some(None);
    if asks_rport || !host.eq_ignore_ascii_case(&source_ip) {
        via.set_param("received", Some(&source_ip));
    }
    if asks_rport {
        via.set_param("rport", Some(&source.port().to_string()));
    }
}

/// Where responses go (RFC 3261 §18.2.2, RFC 3581 §4): back on the connection for
/// streams; for UDP to the source address, at the source port if rport was asked for,
/// else at the sent-by port.
fn response_target(source: SocketAddr, transport: Transport, via: &Via) -> SocketAddr {
    if transport.is_reliable() || via.rport().is_some() {
        return source;
    }
    SocketAddr::new(source.ip(), via.port.unwrap_or(5060))
}

/// A To tag for responses the layer makes itself (487, 481) when the TU has not chosen
/// one yet. It is derived from the branch, so retransmissions get the same tag.
fn derived_tag(branch: &str) -> String {
    let digest = Sha256::digest(format!("genkan-to-tag|{branch}").as_bytes());
    digest[..6]
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect()
}
