//! How requests reach an agent's phone: over UDP to its address, or over TCP on the
//! connection its REGISTER came on, or, once that has closed, on a connection genkan opens
//! to its Contact (`registrar.rs` says when that is allowed). Every request of the phone leg
//! (INVITE, CANCEL, ACK, BYE) goes the leg's `Route`; responses to the phone's own requests
//! (BYE, re-INVITE) go back on the connection those came on, through the transaction layer.
//!
//! A connection that closes while a phone rings on it fails that offer as "not reachable"
//! (the center re-routes at once, rather than after the INVITE's 32 s timeout, since nothing
//! retransmits over TCP). A phone no call can reach any more (its registration's connection
//! closed and its Contact cannot be dialed, or dialing it failed) loses its registration and
//! its agent goes Away until it registers again: otherwise every call would be offered to it
//! and rejected until the registration lapsed, up to five minutes later.

use std::net::SocketAddr;

use contact::{ContactId, Event, Status};
use sip::{Output, TransactionId, Transport};
use tokio::sync::mpsc::unbounded_channel;

use crate::clock;
use crate::voice::registrar::Reach;
use crate::voice::switch::Switch;
use crate::voice::tcp;

/// Where and how a phone leg's requests are sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(in crate::voice) struct Route {
    /// The phone's address; over TCP, the peer of the connection used.
    pub(in crate::voice) to: SocketAddr,
    pub(in crate::voice) transport: Transport,
    /// Over TCP, where to dial should that connection close (from the phone's Contact).
    dial: Option<SocketAddr>,
}

impl Switch {
    /// The route of an offer to `agent`'s phone, or `None` after telling the center the
    /// agent rejected the offer because the phone cannot be reached.
    pub(super) fn route_for_offer(
        &mut self,
        contact: ContactId,
        agent: &str,
        reach: Reach,
    ) -> Option<Route> {
        let route = self.route_to(reach);
        if route.is_none() {
            tracing::info!(%contact, agent, "the agent's phone cannot be reached");
            self.center.event(Event::Reject {
                agent: agent.to_owned(),
                contact,
            });
        }
        route
    }

    /// How to reach a phone now: over UDP at once; over TCP on the registration's connection
    /// while it is open, else on a connection to the Contact, dialed now (what is sent waits
    /// in its queue until it opens). `None` when there is no way.
    fn route_to(&mut self, reach: Reach) -> Option<Route> {
        match reach {
            Reach::Udp(to) => Some(Route {
                to,
                transport: Transport::Udp,
                dial: None,
            }),
            Reach::Tcp { flow, dial } => {
                let open = flow.filter(|flow| self.connections.contains_key(flow));
                let to = match (open, dial) {
                    (Some(flow), _) => flow,
                    (None, Some(dial)) => {
                        self.connect(dial);
                        dial
                    }
                    (None, None) => return None,
                };
                Some(Route {
                    to,
                    transport: Transport::Tcp,
                    dial,
                })
            }
        }
    }

    /// The route of a request later in a call: the leg's own, unless its connection has
    /// closed; then the connection the agent's phone registered on since, or a new one.
    pub(super) fn reroute(&mut self, agent: &str, route: Route) -> Route {
        if !route.transport.is_reliable() || self.connections.contains_key(&route.to) {
            return route;
        }
        let flow = match self.registrar.lookup(agent, clock::instant_now()) {
            Some(binding) => match binding.reach {
                Reach::Tcp { flow, .. } => flow,
                Reach::Udp(_) => None,
            },
            None => None,
        };
        let reach = Reach::Tcp {
            flow,
            dial: route.dial,
        };
        self.route_to(reach).unwrap_or(route)
    }

    /// Dials `peer`, unless a connection to it is open or opening.
    fn connect(&mut self, peer: SocketAddr) {
        if self.connections.contains_key(&peer) {
            return;
        }
        tracing::debug!(%peer, "opening a SIP TCP connection to a phone");
        let (writer, queued) = unbounded_channel();
        self.connections.insert(peer, writer);
        tcp::dial(peer, queued, self.streams.clone());
    }

    /// A TCP connection closed, or (`opened` false) one genkan dialed never opened: offers
    /// ringing on it fail, phone INVITEs given up on it are forgotten, and agents whose
    /// phones no call can reach now go Away.
    pub(in crate::voice) fn connection_lost(
        &mut self,
        peer: SocketAddr,
        opened: bool,
    ) -> Vec<Output> {
        let on_it = |route: &Route| route.transport.is_reliable() && route.to == peer;
        let ringing: Vec<TransactionId> = self
            .calls
            .values()
            .filter_map(|call| call.phone.as_ref())
            .filter(|phone| phone.dialog.is_none() && on_it(&phone.route))
            .map(|phone| phone.transaction)
            .collect();
        let mut outputs = Vec::new();
        for transaction in ringing {
            outputs.extend(self.phone_failed(transaction, "not reachable"));
        }
        self.abandoned.retain(|_, (_, route)| !on_it(route));
        // After the rejections, so the center re-routes those calls before the agent leaves.
        let mut stranded = self.registrar.flow_closed(peer);
        if !opened {
            stranded.extend(self.registrar.unreachable(peer));
        }
        for agent in stranded {
            tracing::info!(agent, %peer, "SIP phone cannot be reached over TCP; unregistered");
            self.center.event(Event::AgentStatus {
                agent,
                status: Status::Away,
            });
        }
        outputs
    }
}
