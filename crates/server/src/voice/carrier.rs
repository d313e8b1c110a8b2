//! genkan's own registrations with carriers (`[voice.trunk.register]`): the switch drives
//! one `sip::registration::Registration` per such trunk, sending its REGISTERs from the SIP
//! socket (so a NAT in between maps the carrier's calls back to it) through client
//! transactions, and resolving the registrar's host name before every REGISTER (in a task
//! of its own, so a slow DNS server never holds up calls), so a carrier that moves its
//! registrar is followed.
//!
//! Calls from the address the registrar resolved to are that trunk's, like calls from an
//! `allow`ed address.

use std::net::{IpAddr, SocketAddr};
use std::time::Instant;

use sip::registration::{Account, Outcome, Registration};
use sip::{Message, Response, SipUri, TransactionId, Transport};
use tokio::sync::mpsc::UnboundedSender;

use super::calls::host;
use super::switch::Switch;
use super::token;
use crate::clock;
use crate::config::TrunkSettings;

/// A name lookup's answer: which registration, and where its registrar is.
pub(crate) struct Resolved {
    index: usize,
    address: Result<SocketAddr, String>,
}

struct Carrier {
    trunk: String,
    host: String,
    port: u16,
    registration: Registration,
    /// Where the registrar was last found.
    address: Option<SocketAddr>,
    /// A lookup is under way.
    resolving: bool,
    /// The REGISTER in flight.
    transaction: Option<TransactionId>,
}

/// Every trunk's registration.
pub(crate) struct Carriers {
    carriers: Vec<Carrier>,
    resolved: UnboundedSender<Resolved>,
}

impl Carriers {
    /// A registration for each trunk that asks for one; all are due at once. `public` is
    /// genkan's SIP address as the carrier reaches it.
    pub(crate) fn new(
        trunks: &[TrunkSettings],
        public: SocketAddr,
        resolved: UnboundedSender<Resolved>,
        now: Instant,
    ) -> Self {
        let carriers = trunks
            .iter()
            .filter_map(|trunk| {
                let register = trunk.register.as_ref()?;
                let account = Account {
                    registrar: SipUri::new(None, &uri_host(&register.host), Some(register.port)),
                    aor: SipUri::new(Some(&register.username), &uri_host(&register.domain), None),
                    contact: SipUri::new(
                        Some(&register.username),
                        &host(public.ip()),
                        Some(public.port()),
                    ),
                    username: register.username.clone(),
                    password: register.password.expose().to_owned(),
                    expires: register.expires,
                };
                let call_id = format!("{}@genkan", token());
                Some(Carrier {
                    trunk: trunk.name.clone(),
                    host: register.host.clone(),
                    port: register.port,
                    registration: Registration::new(account, &call_id, &token(), now),
                    address: register
                        .host
                        .parse::<IpAddr>()
                        .ok()
                        .map(|ip| SocketAddr::new(ip, register.port)),
                    resolving: false,
                    transaction: None,
                })
            })
            .collect();
        Self { carriers, resolved }
    }

    /// When a REGISTER is next due (lookups under way excepted).
    pub(crate) fn next_due(&self) -> Option<Instant> {
        self.carriers
            .iter()
            .filter(|carrier| !carrier.resolving)
            .filter_map(|carrier| carrier.registration.due())
            .min()
    }

    /// The trunk whose registrar is at `ip`, if any.
    pub(crate) fn trunk_at(&self, ip: IpAddr) -> Option<&str> {
        self.carriers
            .iter()
            .find(|carrier| carrier.address.is_some_and(|address| address.ip() == ip))
            .map(|carrier| carrier.trunk.as_str())
    }

    /// Whether `transaction` is one of our REGISTERs.
    pub(crate) fn owns(&self, transaction: TransactionId) -> bool {
        self.index_of(transaction).is_some()
    }

    /// The registration whose REGISTER is `transaction`.
    fn index_of(&self, transaction: TransactionId) -> Option<usize> {
        self.carriers
            .iter()
            .position(|carrier| carrier.transaction == Some(transaction))
    }
}

impl Switch {
    /// Sends every REGISTER that is due, looking the registrar up first when it is a name.
    pub(super) fn registrations_due(&mut self) {
        let now = clock::instant_now();
        for index in 0..self.carriers.carriers.len() {
            let carrier = &mut self.carriers.carriers[index];
            if carrier.resolving || carrier.registration.due().is_none_or(|due| due > now) {
                continue;
            }
            if carrier.host.parse::<IpAddr>().is_ok() {
                self.send_register(index);
                continue;
            }
            carrier.resolving = true;
            let (host, port) = (carrier.host.clone(), carrier.port);
            let resolved = self.carriers.resolved.clone();
            tokio::spawn(async move {
                let lookup = tokio::time::timeout(
                    std::time::Duration::from_secs(10),
                    tokio::net::lookup_host((host.as_str(), port)),
                )
                .await;
                let address = match lookup {
                    Ok(Ok(mut addresses)) => addresses
                        .next()
                        .ok_or_else(|| format!("{host} has no address")),
                    Ok(Err(error)) => Err(format!("{host} did not resolve: {error}")),
                    Err(_) => Err(format!("looking {host} up took over 10 s")),
                };
                let _ = resolved.send(Resolved { index, address });
            });
        }
    }

    /// A lookup ended: send the REGISTER that waited for it, or back off.
    pub(super) fn registrar_resolved(&mut self, resolved: Resolved) {
        let Some(carrier) = self.carriers.carriers.get_mut(resolved.index) else {
            return;
        };
        carrier.resolving = false;
        match resolved.address {
            Ok(address) => {
                carrier.address = Some(address);
                self.send_register(resolved.index);
            }
            Err(reason) => {
                let outcome = carrier
                    .registration
                    .unreachable(clock::instant_now(), &reason);
                log_outcome(&carrier.trunk, &outcome, false);
            }
        }
    }

    fn send_register(&mut self, index: usize) {
        let via = self.via(Transport::Udp);
        let carrier = &mut self.carriers.carriers[index];
        let Some(address) = carrier.address else {
            return;
        };
        let now = clock::instant_now();
        let Some(request) = carrier.registration.poll(now, via, &token()) else {
            return;
        };
        match self
            .transactions
            .request(request, address, Transport::Udp, now)
        {
            Ok((transaction, outputs)) => {
                carrier.transaction = Some(transaction);
                self.drive(outputs);
            }
            Err(error) => {
                let outcome = carrier.registration.timed_out(now);
                tracing::warn!(trunk = carrier.trunk, %error, "cannot send REGISTER");
                log_outcome(&carrier.trunk, &outcome, false);
            }
        }
    }

    /// A response to one of our REGISTERs; a challenge is answered at once.
    pub(super) fn registration_response(
        &mut self,
        transaction: TransactionId,
        response: &Response,
    ) {
        let Some(index) = self.carriers.index_of(transaction) else {
            return;
        };
        let carrier = &mut self.carriers.carriers[index];
        let now = clock::instant_now();
        let was_registered = carrier.registration.is_registered(now);
        let outcome = carrier.registration.response(response, now);
        if response.status >= 200 {
            carrier.transaction = None;
        }
        log_outcome(&carrier.trunk, &outcome, was_registered);
        if outcome == Outcome::Retry {
            self.send_register(index);
        }
    }

    /// One of our REGISTERs got no answer.
    pub(super) fn registration_timed_out(&mut self, transaction: TransactionId) {
        let Some(index) = self.carriers.index_of(transaction) else {
            return;
        };
        let carrier = &mut self.carriers.carriers[index];
        carrier.transaction = None;
        let outcome = carrier.registration.timed_out(clock::instant_now());
        log_outcome(&carrier.trunk, &outcome, false);
    }

    /// At shutdown: ask every carrier to drop our binding (best effort, not retried).
    pub(super) fn unregister_all(&mut self) {
        for index in 0..self.carriers.carriers.len() {
            let via = self.via(Transport::Udp);
            let carrier = &mut self.carriers.carriers[index];
            let now = clock::instant_now();
            let (Some(address), true) = (carrier.address, carrier.registration.is_registered(now))
            else {
                continue;
            };
            let request = carrier.registration.unregister(via, &token());
            tracing::info!(trunk = carrier.trunk, "unregistering from the carrier");
            self.send_via(&Message::Request(request), address, Transport::Udp);
        }
    }
}

fn log_outcome(trunk: &str, outcome: &Outcome, was_registered: bool) {
    match outcome {
        Outcome::Registered { expires } if was_registered => {
            tracing::debug!(
                trunk,
                expires = expires.as_secs(),
                "carrier registration refreshed"
            );
        }
        Outcome::Registered { expires } => {
            tracing::info!(
                trunk,
                expires = expires.as_secs(),
                "registered with the carrier"
            );
        }
        Outcome::Failed {
            status,
            reason,
            retry_in,
        } => tracing::warn!(
            trunk,
            status,
            reason,
            retry_in = retry_in.as_secs(),
            "carrier registration failed"
        ),
        Outcome::Retry | Outcome::Ignored => {}
    }
}

/// A configured host (a name or an address) as it is written in a SIP URI: IPv6 addresses
/// in brackets.
fn uri_host(host: &str) -> String {
    if host.contains(':') && !host.starts_with('[') {
        format!("[{host}]")
    } else {
        host.to_owned()
    }
}
