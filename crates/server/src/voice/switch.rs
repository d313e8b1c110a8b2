//! The switch's socket loop and the requests that are not calls: REGISTER (digest, then the
//! registrar), OPTIONS, refusals of malformed messages (400 from `sip::refusal`) and of
//! methods genkan does not take. Calls are in `calls.rs`.

use std::collections::{BTreeMap, VecDeque};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use contact::{ContactId, Event, Status};
use sip::auth::{Nonces, Verdict};
use sip::{
    Contact, Message, Method, Output, Request, Response, TransactionId, Transactions, Transport,
};
use tokio::net::UdpSocket;
use tokio::sync::mpsc::{UnboundedReceiver, UnboundedSender};
use tokio::sync::watch;

use super::calls::{Call, Route};
use super::carrier::{Carriers, Resolved};
use super::media::RtpPorts;
use super::prompts::PromptLibrary;
use super::registrar::{MAX_EXPIRES, MIN_EXPIRES, Reach, Registrar, max_expires};
use super::softphone::{Softphones, ToSwitch};
use super::tcp::StreamEvent;
use super::{random, token};
use crate::center::runtime::{ContactCenter, VoiceCommand};
use crate::clock;
use crate::config::VoiceSettings;

/// The digest realm of REGISTER and trunk challenges.
pub(super) const REALM: &str = "genkan";
/// Methods genkan answers.
pub(super) const ALLOW: &str = "INVITE, ACK, BYE, CANCEL, OPTIONS, REGISTER";

/// The state the SIP task owns.
pub(crate) struct Switch {
    pub(super) settings: VoiceSettings,
    socket: UdpSocket,
    /// Our SIP address as peers reach it (public address, bound port).
    pub(super) public: SocketAddr,
    pub(super) transactions: Transactions,
    pub(super) nonces: Nonces,
    pub(super) registrar: Registrar,
    pub(super) center: Arc<ContactCenter>,
    pub(super) ports: RtpPorts,
    pub(super) recordings: PathBuf,
    pub(super) calls: BTreeMap<ContactId, Call>,
    /// Trunk and phone Call-IDs of live calls.
    pub(super) by_call_id: BTreeMap<String, ContactId>,
    /// Trunk INVITE server transactions and phone INVITE client transactions.
    pub(super) by_transaction: BTreeMap<TransactionId, ContactId>,
    /// Phone INVITEs given up (cancelled, withdrawn) whose late 2xx must be ACKed and ended.
    pub(super) abandoned: BTreeMap<TransactionId, (Request, Route)>,
    /// Open TCP connections by peer (and those being dialed): where to write what goes to them.
    pub(super) connections: BTreeMap<SocketAddr, UnboundedSender<Vec<u8>>>,
    /// Where connections the switch dials report, like accepted ones.
    pub(super) streams: UnboundedSender<StreamEvent>,
    /// The flow's prompts, decoded; an upload swaps them in place.
    pub(super) prompts: Arc<PromptLibrary>,
    /// Agents' browser softphones.
    pub(super) softphones: Softphones,
    /// Calls whose hang-up waited for a prompt to end come back through here.
    pub(super) wake: UnboundedSender<ContactId>,
    woken: Option<UnboundedReceiver<ContactId>>,
    /// genkan's registrations with carriers.
    pub(super) carriers: Carriers,
    resolved: Option<UnboundedReceiver<Resolved>>,
}

impl Switch {
    pub(super) fn new(
        settings: VoiceSettings,
        socket: UdpSocket,
        bound: SocketAddr,
        center: Arc<ContactCenter>,
        recordings: PathBuf,
        prompts: Arc<PromptLibrary>,
        softphones: Softphones,
        streams: UnboundedSender<StreamEvent>,
    ) -> anyhow::Result<Self> {
        let (wake, woken) = tokio::sync::mpsc::unbounded_channel();
        let (resolved_sender, resolved) = tokio::sync::mpsc::unbounded_channel();
        let public = SocketAddr::new(settings.public_address, bound.port());
        let carriers = Carriers::new(
            &settings.trunks,
            public,
            resolved_sender,
            clock::instant_now(),
        );
        let ports = RtpPorts::new(settings.sip_listen.ip(), settings.rtp_ports.clone());
        // The nonce key must be unguessable: no OS randomness, no voice.
        let mut secret = [0u8; 32];
        getrandom::fill(&mut secret)
            .map_err(|error| anyhow::anyhow!("no randomness from the OS: {error}"))?;
        Ok(Self {
            public,
            settings,
            socket,
            transactions: Transactions::new(sip::Timers::default()),
            nonces: Nonces::new(secret, Duration::from_secs(300)),
            registrar: Registrar::default(),
            center,
            ports,
            recordings,
            calls: BTreeMap::new(),
            by_call_id: BTreeMap::new(),
            by_transaction: BTreeMap::new(),
            abandoned: BTreeMap::new(),
            connections: BTreeMap::new(),
            streams,
            prompts,
            softphones,
            wake,
            woken: Some(woken),
            carriers,
            resolved: Some(resolved),
        })
    }

    /// The loop: datagrams, the center's commands, transaction timers, registration expiry.
    pub(super) async fn run(
        mut self,
        mut commands: UnboundedReceiver<VoiceCommand>,
        mut streams: UnboundedReceiver<StreamEvent>,
        mut softphones: UnboundedReceiver<ToSwitch>,
        mut shutdown: watch::Receiver<bool>,
    ) {
        let mut buffer = vec![0u8; 65_536];
        let mut sweep = tokio::time::interval(Duration::from_secs(10));
        let (Some(mut woken), Some(mut resolved)) = (self.woken.take(), self.resolved.take())
        else {
            return;
        };
        loop {
            let timer = self.transactions.next_timer();
            let timer_due = async {
                match timer {
                    Some(at) => tokio::time::sleep_until(tokio::time::Instant::from_std(at)).await,
                    None => std::future::pending().await,
                }
            };
            let registration = self.carriers.next_due();
            let registration_due = async {
                match registration {
                    Some(at) => tokio::time::sleep_until(tokio::time::Instant::from_std(at)).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                received = self.socket.recv_from(&mut buffer) => match received {
                    Ok((len, source)) => self.datagram(&buffer[..len], source),
                    Err(error) => tracing::debug!(%error, "SIP receive failed"),
                },
                Some(command) = commands.recv() => self.command(command),
                Some(event) = streams.recv() => self.stream_event(event),
                Some(contact) = woken.recv() => self.prompt_played(contact),
                Some(note) = softphones.recv() => self.softphone_note(note),
                () = timer_due => {
                    let outputs = self.transactions.timer(clock::instant_now());
                    self.drive(outputs);
                }
                () = registration_due => self.registrations_due(),
                Some(answer) = resolved.recv() => self.registrar_resolved(answer),
                _ = sweep.tick() => self.sweep(),
                _ = shutdown.changed() => {
                    self.unregister_all();
                    self.hang_up_all();
                    return;
                }
            }
        }
    }

    fn datagram(&mut self, bytes: &[u8], source: SocketAddr) {
        // Keep-alives (CRLF pings) carry nothing.
        if bytes.iter().all(|byte| byte.is_ascii_whitespace()) {
            return;
        }
        self.message(bytes, source, Transport::Udp);
    }

    fn message(&mut self, bytes: &[u8], source: SocketAddr, transport: Transport) {
        match sip::parse(bytes, transport) {
            Ok(message) => {
                let outputs =
                    self.transactions
                        .received(message, source, transport, clock::instant_now());
                self.drive(outputs);
            }
            Err(error) => self.refuse(bytes, &error, source, transport),
        }
    }

    fn refuse(&self, bytes: &[u8], error: &sip::Error, source: SocketAddr, transport: Transport) {
        tracing::debug!(%source, %error, "malformed SIP message");
        if let Some(refusal) = sip::refusal(bytes, error, &token()) {
            self.send_via(&Message::Response(refusal), source, transport);
        }
    }

    fn stream_event(&mut self, event: StreamEvent) {
        match event {
            StreamEvent::Opened { peer, writer } => {
                self.connections.insert(peer, writer);
            }
            StreamEvent::Message { peer, bytes } => self.message(&bytes, peer, Transport::Tcp),
            StreamEvent::Unframeable { peer, bytes, error } => {
                self.refuse(&bytes, &error, peer, Transport::Tcp);
            }
            StreamEvent::Closed { peer } => {
                self.connections.remove(&peer);
                let outputs = self.connection_lost(peer, true);
                self.drive(outputs);
            }
            StreamEvent::Unreachable { peer } => {
                self.connections.remove(&peer);
                let outputs = self.connection_lost(peer, false);
                self.drive(outputs);
            }
        }
    }

    /// Carries out the layer's outputs, and whatever the TU's answers to them output.
    pub(super) fn drive(&mut self, outputs: Vec<Output>) {
        let mut queue: VecDeque<Output> = outputs.into();
        while let Some(output) = queue.pop_front() {
            match output {
                Output::Send {
                    to,
                    transport,
                    message,
                    ..
                } => self.send_via(&message, to, transport),
                Output::Event(event) => {
                    let more = self.event(event);
                    queue.extend(more);
                }
                Output::Armed { .. } => {}
            }
        }
    }

    /// Sends over UDP, or on the open TCP connection from `to`.
    pub(super) fn send_via(&self, message: &Message, to: SocketAddr, transport: Transport) {
        let bytes = message.to_bytes();
        if transport.is_reliable() {
            match self.connections.get(&to) {
                Some(writer) => {
                    let _ = writer.send(bytes);
                }
                None => tracing::debug!(%to, "no TCP connection to send on"),
            }
        } else if let Err(error) = self.socket.try_send_to(&bytes, to) {
            tracing::debug!(%to, %error, "SIP send failed");
        }
    }

    fn event(&mut self, event: sip::Event) -> Vec<Output> {
        match event {
            sip::Event::Request {
                transaction,
                request,
                source,
                transport,
            } => self.request(transaction, request, source, transport),
            sip::Event::Ack { request, .. } => self.ack(&request),
            sip::Event::Terminated { .. } => Vec::new(),
            sip::Event::Cancelled { invite } => self.trunk_cancelled(invite),
            sip::Event::Response {
                transaction,
                response,
            } if self.carriers.owns(transaction) => {
                self.registration_response(transaction, &response);
                Vec::new()
            }
            sip::Event::Response {
                transaction,
                response,
            } => self.response(transaction, &response),
            sip::Event::Timeout { transaction } if self.carriers.owns(transaction) => {
                self.registration_timed_out(transaction);
                Vec::new()
            }
            sip::Event::Timeout { transaction } => {
                self.abandoned.remove(&transaction);
                self.phone_failed(transaction, "no answer")
            }
            sip::Event::NoAck { transaction } => self.trunk_no_ack(transaction),
        }
    }

    fn request(
        &mut self,
        transaction: TransactionId,
        request: Request,
        source: SocketAddr,
        transport: Transport,
    ) -> Vec<Output> {
        match request.method {
            Method::Register => self.register(transaction, &request, source, transport),
            Method::Options => {
                let mut response = with_tag(sip::response_to(&request, 200, "OK"), &request);
                response.headers.other.push(("Allow".into(), ALLOW.into()));
                self.respond(transaction, response)
            }
            Method::Invite if request.headers.to.tag().is_none() => {
                self.trunk_invite(transaction, request, source, transport)
            }
            Method::Invite => self.reinvite(transaction, &request),
            Method::Bye => self.bye(transaction, &request),
            _ => {
                let mut response = with_tag(
                    sip::response_to(&request, 405, "Method Not Allowed"),
                    &request,
                );
                response.headers.other.push(("Allow".into(), ALLOW.into()));
                self.respond(transaction, response)
            }
        }
    }

    /// Answers on a server transaction.
    pub(super) fn respond(
        &mut self,
        transaction: TransactionId,
        response: Response,
    ) -> Vec<Output> {
        match self
            .transactions
            .respond(transaction, response, clock::instant_now())
        {
            Ok(outputs) => outputs,
            Err(error) => {
                tracing::debug!(%transaction, %error, "cannot respond");
                Vec::new()
            }
        }
    }

    /// A 401 with a fresh challenge.
    pub(super) fn challenge(
        &mut self,
        transaction: TransactionId,
        request: &Request,
        stale: bool,
    ) -> Vec<Output> {
        let auth = self
            .nonces
            .challenge(REALM, clock::system_now(), random(), stale);
        let mut response = with_tag(sip::response_to(request, 401, "Unauthorized"), request);
        response.headers.www_authenticate.push(auth);
        self.respond(transaction, response)
    }

    fn register(
        &mut self,
        transaction: TransactionId,
        request: &Request,
        source: SocketAddr,
        transport: Transport,
    ) -> Vec<Output> {
        let agents = &self.settings.sip_agents;
        let verdict = self.nonces.verify(
            request,
            REALM,
            |user| {
                agents
                    .iter()
                    .find(|agent| agent.name == user)
                    .map(|agent| sip::auth::ha1(&agent.name, REALM, agent.password.expose()))
            },
            clock::system_now(),
        );
        let agent = match verdict {
            Verdict::Missing => return self.challenge(transaction, request, false),
            Verdict::Stale => return self.challenge(transaction, request, true),
            Verdict::Invalid(reason) => {
                tracing::info!(%source, reason, "REGISTER refused");
                let response = with_tag(sip::response_to(request, 403, "Forbidden"), request);
                return self.respond(transaction, response);
            }
            Verdict::Valid { username } => username,
        };
        let to_user = request
            .headers
            .to
            .uri
            .as_sip()
            .and_then(|uri| uri.user.as_deref());
        if to_user != Some(agent.as_str()) {
            let response = with_tag(sip::response_to(request, 403, "Forbidden"), request);
            return self.respond(transaction, response);
        }
        let now = clock::instant_now();
        let mut response = with_tag(sip::response_to(request, 200, "OK"), request);
        let contact = request
            .headers
            .contact
            .iter()
            .find_map(|contact| match contact {
                Contact::Address(address) => Some(address.clone()),
                Contact::Wildcard => None,
            });
        let wildcard = request
            .headers
            .contact
            .iter()
            .any(|contact| matches!(contact, Contact::Wildcard));
        let asked = contact
            .as_ref()
            .and_then(|address| address.param("expires").flatten())
            .and_then(|value| value.parse::<u32>().ok())
            .or(request.headers.expires)
            .unwrap_or(MAX_EXPIRES);
        match contact {
            Some(mut address) if asked > 0 => {
                let expires = asked.clamp(MIN_EXPIRES, max_expires(transport));
                let lifetime = Duration::from_secs(u64::from(expires));
                let reach = if transport.is_reliable() {
                    Reach::Tcp {
                        flow: Some(source),
                        dial: tcp_contact_address(&address.uri),
                    }
                } else {
                    Reach::Udp(contact_address(&address.uri).unwrap_or(source))
                };
                if self
                    .registrar
                    .bind(&agent, address.uri.clone(), reach, lifetime, now)
                {
                    tracing::info!(agent, "SIP phone registered");
                    self.center.event(Event::AgentStatus {
                        agent: agent.clone(),
                        status: Status::Available,
                    });
                }
                address.params.retain(|param| !param.is("expires"));
                address
                    .params
                    .push(sip::Param::new("expires", &expires.to_string()));
                response.headers.contact.push(Contact::Address(address));
            }
            Some(_) => self.unregister(&agent),
            None if wildcard => self.unregister(&agent),
            // A query: answer with the current binding.
            None => {
                if let Some(binding) = self.registrar.lookup(&agent, now) {
                    let left = binding.expires.saturating_duration_since(now).as_secs();
                    let mut address = sip::NameAddr::new(binding.contact.clone());
                    address
                        .params
                        .push(sip::Param::new("expires", &left.to_string()));
                    response.headers.contact.push(Contact::Address(address));
                }
            }
        }
        self.respond(transaction, response)
    }

    fn unregister(&mut self, agent: &str) {
        if self.registrar.unbind(agent) {
            tracing::info!(agent, "SIP phone unregistered");
            self.center.event(Event::AgentStatus {
                agent: agent.to_owned(),
                status: Status::Away,
            });
        }
    }

    fn sweep(&mut self) {
        for agent in self.registrar.expire(clock::instant_now()) {
            tracing::info!(agent, "SIP phone registration lapsed");
            self.center.event(Event::AgentStatus {
                agent,
                status: Status::Away,
            });
        }
    }
}

/// Where a Contact with an IP address in it is reached (UDP, port 5060 by default); `None`
/// for a host name, which genkan does not resolve: the REGISTER's source is used instead.
fn contact_address(uri: &sip::Uri) -> Option<SocketAddr> {
    let uri = uri.as_sip()?;
    let host = uri.host.trim_start_matches('[').trim_end_matches(']');
    let ip: std::net::IpAddr = host.parse().ok()?;
    Some(SocketAddr::new(ip, uri.port.unwrap_or(5060)))
}

/// Where a Contact that asks for TCP (`;transport=tcp`) and names an IP address is dialed.
fn tcp_contact_address(uri: &sip::Uri) -> Option<SocketAddr> {
    let sip_uri = uri.as_sip()?;
    let tcp = sip_uri
        .param("transport")
        .flatten()
        .is_some_and(|transport| transport.eq_ignore_ascii_case("tcp"));
    tcp.then(|| contact_address(uri)).flatten()
}

/// A final response gets our To tag unless the request already had one (RFC 3261 §8.2.6.2).
pub(super) fn with_tag(response: Response, request: &Request) -> Response {
    if request.headers.to.tag().is_some() || response.status == 100 {
        response
    } else {
        response.with_to_tag(&token())
    }
}
