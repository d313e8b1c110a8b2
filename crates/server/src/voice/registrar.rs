//! Where agents' SIP phones are: the registrar's bindings, in memory, each with its expiry.
//! The Contact is the Request-URI of calls to the phone. A phone that registered over UDP is
//! called over UDP at the address in its Contact when that is an IP address (else where its
//! REGISTER came from). A phone that registered over TCP is called on the connection its
//! REGISTER came on, as phones behind NAT expect (RFC 5626 reuses the registration's flow the
//! same way); once that connection has closed, on a new connection to its Contact, when the
//! Contact says `transport=tcp` and names an IP address, and otherwise not at all.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use sip::{Transport, Uri};

/// Shortest and longest registration genkan grants, in seconds.
pub(crate) const MIN_EXPIRES: u32 = 60;
pub(crate) const MAX_EXPIRES: u32 = 3600;

/// The longest registration over `transport`. Over TCP it is the idle limit of a connection,
/// so that the phone's refreshes (due before the registration lapses) keep the connection it
/// is called on open even when the phone sends no keep-alives.
pub(crate) fn max_expires(transport: Transport) -> u32 {
    if transport.is_reliable() {
        let idle = u32::try_from(super::tcp::IDLE.as_secs()).unwrap_or(MAX_EXPIRES);
        idle.clamp(MIN_EXPIRES, MAX_EXPIRES)
    } else {
        MAX_EXPIRES
    }
}

/// How calls reach a phone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Reach {
    /// Datagrams to this address.
    Udp(SocketAddr),
    /// Over TCP: on the connection the REGISTER came on (its peer) while that is open, else
    /// on a connection genkan opens to `dial`, when the Contact allows one.
    Tcp {
        flow: Option<SocketAddr>,
        dial: Option<SocketAddr>,
    },
}

/// One phone's binding.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Binding {
    /// The phone's Contact: the Request-URI of calls to it.
    pub(crate) contact: Uri,
    /// How calls to it are sent.
    pub(crate) reach: Reach,
    /// When it lapses.
    pub(crate) expires: Instant,
}

/// Bindings by agent name.
#[derive(Debug, Default)]
pub(crate) struct Registrar {
    bindings: BTreeMap<String, Binding>,
}

impl Registrar {
    /// Adds or refreshes a binding; true when the agent had none.
    pub(crate) fn bind(
        &mut self,
        agent: &str,
        contact: Uri,
        reach: Reach,
        lifetime: Duration,
        now: Instant,
    ) -> bool {
        let binding = Binding {
            contact,
            reach,
            expires: now + lifetime,
        };
        self.bindings.insert(agent.to_owned(), binding).is_none()
    }

    /// Removes a binding; true when there was one.
    pub(crate) fn unbind(&mut self, agent: &str) -> bool {
        self.bindings.remove(agent).is_some()
    }

    /// The agent's live binding.
    pub(crate) fn lookup(&self, agent: &str, now: Instant) -> Option<&Binding> {
        self.bindings
            .get(agent)
            .filter(|binding| binding.expires > now)
    }

    /// A TCP connection closed: bindings registered on it forget it, and those that cannot
    /// be dialed instead are dropped (returning their agents), because no call can reach
    /// their phones until they register again.
    pub(crate) fn flow_closed(&mut self, peer: SocketAddr) -> Vec<String> {
        let mut stranded = Vec::new();
        for (agent, binding) in &mut self.bindings {
            if let Reach::Tcp { flow, dial } = &mut binding.reach
                && *flow == Some(peer)
            {
                *flow = None;
                if dial.is_none() {
                    stranded.push(agent.clone());
                }
            }
        }
        for agent in &stranded {
            self.bindings.remove(agent);
        }
        stranded
    }

    /// A connection dialed to `peer` could not be opened: bindings that had only that way to
    /// their phone are dropped, returning their agents. (One that registered again on a new
    /// connection meanwhile is kept.)
    pub(crate) fn unreachable(&mut self, peer: SocketAddr) -> Vec<String> {
        let lost: Vec<String> = self
            .bindings
            .iter()
            .filter(|(_, binding)| {
                binding.reach
                    == Reach::Tcp {
                        flow: None,
                        dial: Some(peer),
                    }
            })
            .map(|(agent, _)| agent.clone())
            .collect();
        for agent in &lost {
            self.bindings.remove(agent);
        }
        lost
    }

    /// Drops lapsed bindings, returning their agents.
    pub(crate) fn expire(&mut self, now: Instant) -> Vec<String> {
        let lapsed: Vec<String> = self
            .bindings
            .iter()
            .filter(|(_, binding)| binding.expires <= now)
            .map(|(agent, _)| agent.clone())
            .collect();
        for agent in &lapsed {
            self.bindings.remove(agent);
        }
        lapsed
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bindings_lapse_at_their_expiry_and_report_once() {
        let mut registrar = Registrar::default();
        let start = crate::clock::instant_now();
        let contact = Uri::parse("sip:agent1@127.0.0.1:5090").unwrap();
        let reach = Reach::Udp("127.0.0.1:5090".parse().unwrap());
        assert!(registrar.bind(
            "agent1",
            contact.clone(),
            reach,
            Duration::from_secs(60),
            start
        ));
        assert!(!registrar.bind("agent1", contact, reach, Duration::from_secs(60), start));
        let later = start + Duration::from_secs(59);
        assert_eq!(registrar.lookup("agent1", later).unwrap().reach, reach);
        assert!(registrar.expire(later).is_empty());
        let lapsed = start + Duration::from_secs(60);
        assert!(registrar.lookup("agent1", lapsed).is_none());
        assert_eq!(registrar.expire(lapsed), ["agent1"]);
        assert!(registrar.expire(lapsed).is_empty());
        assert!(!registrar.unbind("agent1"));
    }

    #[test]
    fn a_closed_connection_strands_only_phones_that_cannot_be_dialed() {
        let mut registrar = Registrar::default();
        let now = crate::clock::instant_now();
        let hour = Duration::from_secs(3600);
        let flow: SocketAddr = "192.0.2.7:40000".parse().unwrap();
        let other: SocketAddr = "192.0.2.8:40000".parse().unwrap();
        let dial: SocketAddr = "192.0.2.7:5060".parse().unwrap();
        let contact = Uri::parse("sip:agent@192.0.2.7;transport=tcp").unwrap();
        let tcp = |flow, dial| Reach::Tcp {
            flow: Some(flow),
            dial,
        };
        registrar.bind(
            "dialable",
            contact.clone(),
            tcp(flow, Some(dial)),
            hour,
            now,
        );
        registrar.bind("natted", contact.clone(), tcp(flow, None), hour, now);
        registrar.bind("elsewhere", contact.clone(), tcp(other, None), hour, now);
        registrar.bind("udp", contact, Reach::Udp(flow), hour, now);

        assert_eq!(registrar.flow_closed(flow), ["natted"]);
        assert!(registrar.lookup("natted", now).is_none());
        let kept = Reach::Tcp {
            flow: None,
            dial: Some(dial),
        };
        assert_eq!(registrar.lookup("dialable", now).unwrap().reach, kept);
        assert!(registrar.lookup("elsewhere", now).is_some());
        assert!(registrar.lookup("udp", now).is_some());
        assert!(registrar.flow_closed(flow).is_empty());

        // Dialing the phone failed: the binding goes, and only that one.
        assert!(registrar.unreachable(other).is_empty());
        assert_eq!(registrar.unreachable(dial), ["dialable"]);
        assert!(registrar.lookup("dialable", now).is_none());
        assert!(registrar.lookup("elsewhere", now).is_some());
    }

    #[test]
    fn registrations_over_tcp_last_no_longer_than_an_idle_connection() {
        assert_eq!(max_expires(Transport::Udp), MAX_EXPIRES);
        let tcp = u64::from(max_expires(Transport::Tcp));
        assert!(tcp >= u64::from(MIN_EXPIRES));
        assert!(tcp <= super::super::tcp::IDLE.as_secs());
    }
}
