//! Client transactions (RFC 3261 §17.1, RFC 6026 §7.2): INVITE with timers A, B, D and
//! M, non-INVITE with timers E, F and K, and the ACK for a non-2xx final response.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use super::{ALL_TIMERS, Event, Output, Timer, TransactionId, Transactions, branch_key};
use crate::Error;
use crate::header::CSeq;
use crate::message::{Headers, Message, Method, Request, Response, Transport};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// INVITE sent, nothing heard.
    Calling,
    /// Non-INVITE sent, nothing heard.
    Trying,
    /// A provisional response arrived.
    Proceeding,
    /// A final (non-2xx for INVITE) response arrived.
    Completed,
    /// INVITE: a 2xx arrived; further 2xx go to the TU so it can ACK them again.
    Accepted,
}

#[derive(Debug)]
pub(super) struct Client {
    invite: bool,
    state: State,
    request: Request,
    key: (String, Method),
    destination: SocketAddr,
    transport: Transport,
    interval: Duration,
    ack: Option<Request>,
}

impl Transactions {
    /// Starts a client transaction: sends `request` (its top Via must carry a fresh
    /// branch) to `destination` and returns the transaction's id with the outputs.
    ///
    /// To cancel an INVITE, build the CANCEL with [`crate::cancel_for`] once a
    /// provisional response has arrived, and send it through here too.
    pub fn request(
        &mut self,
        request: Request,
        destination: SocketAddr,
        transport: Transport,
        now: Instant,
    ) -> Result<(TransactionId, Vec<Output>), Error> {
        if request.method == Method::Ack {
            return Err(Error::AckIsNotATransaction);
        }
        if request
            .headers
            .via
            .first()
            .and_then(|via| via.branch())
            .is_none()
        {
            return Err(Error::NoBranch);
        }
        let branch = branch_key(&request.headers).ok_or(Error::NoBranch)?;
        let key = (branch, request.method.clone());
        if self.client_keys.contains_key(&key) {
            return Err(Error::BranchInUse(key.0));
        }
        let id = self.new_id();
        let invite = request.method == Method::Invite;
        self.client_keys.insert(key.clone(), id);
        let mut out = vec![Output::Send {
            transaction: id,
            to: destination,
            transport,
            message: Message::Request(request.clone()),
        }];
        self.clients.insert(
            id,
            Client {
                invite,
                state: if invite {
                    State::Calling
                } else {
                    State::Trying
                },
                request,
                key,
                destination,
                transport,
                interval: self.timers.t1,
                ack: None,
            },
        );
        let (retransmit, give_up) = if invite {
            (Timer::A, Timer::B)
        } else {
            (Timer::E, Timer::F)
        };
        if !transport.is_reliable() {
            self.arm(id, retransmit, now + self.timers.t1, &mut out);
        }
        self.arm(id, give_up, now + self.timers.t1x64(), &mut out);
        Ok((id, out))
    }

    pub(super) fn client_received(
        &mut self,
        response: Response,
        now: Instant,
        out: &mut Vec<Output>,
    ) {
        let Some(branch) = branch_key(&response.headers) else {
            return;
        };
        let key = (branch, response.headers.cseq.method.clone());
        let Some(id) = self.client_keys.get(&key).copied() else {
            // Nothing to match: a late retransmission after the transaction ended.
            return;
        };
        let Some(client) = self.clients.get_mut(&id) else {
            return;
        };
        let status = response.status;
        let reliable = client.transport.is_reliable();
        match (client.invite, client.state, status) {
            (_, State::Calling | State::Trying | State::Proceeding, 100..=199) => {
                client.state = State::Proceeding;
                if client.invite {
                    self.disarm(id, &[Timer::A, Timer::B]);
                }
                self.tell(id, response, out);
            }
            (true, State::Calling | State::Proceeding, 200..=299) => {
                client.state = State::Accepted;
                self.disarm(id, &[Timer::A, Timer::B]);
                self.tell(id, response, out);
                self.arm(id, Timer::M, now + self.timers.t1x64(), out);
            }
            (true, State::Accepted, 200..=299) => self.tell(id, response, out),
            (true, State::Calling | State::Proceeding, _) => {
                client.state = State::Completed;
                let ack = ack_for(&client.request, &response);
                client.ack = Some(ack.clone());
                let (destination, transport) = (client.destination, client.transport);
                out.push(Output::Send {
                    transaction: id,
                    to: destination,
                    transport,
                    message: Message::Request(ack),
                });
                self.disarm(id, &[Timer::A, Timer::B]);
                self.tell(id, response, out);
                if reliable {
                    self.end_client(id, out);
                } else {
                    self.arm(id, Timer::D, now + self.timers.d, out);
                }
            }
            (true, State::Completed, 300..) => {
                // The final response was retransmitted: our ACK was lost.
                if let Some(ack) = client.ack.clone() {
                    out.push(Output::Send {
                        transaction: id,
                        to: client.destination,
                        transport: client.transport,
                        message: Message::Request(ack),
                    });
                }
            }
            (false, State::Trying | State::Proceeding, _) => {
                client.state = State::Completed;
                self.disarm(id, &[Timer::E, Timer::F]);
                self.tell(id, response, out);
                if reliable {
                    self.end_client(id, out);
                } else {
                    self.arm(id, Timer::K, now + self.timers.t4, out);
                }
            }
            _ => {}
        }
    }

    pub(super) fn client_timer(
        &mut self,
        id: TransactionId,
        timer: Timer,
        now: Instant,
        out: &mut Vec<Output>,
    ) {
        let Some(client) = self.clients.get_mut(&id) else {
            return;
        };
        match (timer, client.state) {
            (Timer::A, State::Calling) | (Timer::E, State::Trying | State::Proceeding) => {
                // INVITE keeps doubling (Timer A); non-INVITE caps at T2, and sits at T2
                // once a provisional response has arrived (§17.1.2.2).
                let interval = match (timer, client.state) {
                    (Timer::A, _) => client.interval * 2,
                    (_, State::Proceeding) => self.timers.t2,
                    _ => (client.interval * 2).min(self.timers.t2),
                };
                client.interval = interval;
                out.push(Output::Send {
                    transaction: id,
                    to: client.destination,
                    transport: client.transport,
                    message: Message::Request(client.request.clone()),
                });
                self.arm(id, timer, now + interval, out);
            }
            (Timer::B, State::Calling) | (Timer::F, State::Trying | State::Proceeding) => {
                out.push(Output::Event(Event::Timeout { transaction: id }));
                self.end_client(id, out);
            }
            (Timer::D | Timer::K | Timer::M, _) => self.end_client(id, out),
            _ => {}
        }
    }

    fn tell(&mut self, id: TransactionId, response: Response, out: &mut Vec<Output>) {
        out.push(Output::Event(Event::Response {
            transaction: id,
            response,
        }));
    }

    fn end_client(&mut self, id: TransactionId, out: &mut Vec<Output>) {
        self.disarm(id, &ALL_TIMERS);
        if let Some(client) = self.clients.remove(&id) {
            self.client_keys.remove(&client.key);
            out.push(Output::Event(Event::Terminated { transaction: id }));
        }
    }
}

/// The ACK for a non-2xx final response (RFC 3261 §17.1.1.3): the INVITE's Request-URI,
/// top Via, Call-ID, From, CSeq number and Route, with the response's To (and its tag).
fn ack_for(invite: &Request, response: &Response) -> Request {
    let source = &invite.headers;
    let cseq = CSeq {
        seq: source.cseq.seq,
        method: Method::Ack,
    };
    let mut headers = Headers::new(
        source.from.clone(),
        response.headers.to.clone(),
        &source.call_id,
        cseq,
    );
    headers.via = source.via.iter().take(1).cloned().collect();
    headers.max_forwards = Some(70);
    headers.route = source.route.clone();
    Request {
        method: Method::Ack,
        uri: invite.uri.clone(),
        headers,
        body: Vec::new(),
    }
}
