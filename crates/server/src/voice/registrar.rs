//! Where agents' SIP phones are: the registrar's bindings, in memory, each with its expiry.
//! A phone is reached at the address in its Contact when that is an IP address (else where
//! its REGISTER came from), with its Contact as the Request-URI.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use sip::Uri;

/// Shortest and longest registration genkan grants, in seconds.
pub(crate) const MIN_EXPIRES: u32 = 60;
pub(crate) const MAX_EXPIRES: u32 = 3600;

/// One phone's binding.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Binding {
    /// The phone's Contact: the Request-URI of calls to it.
    pub(crate) contact: Uri,
    /// Where calls to it are sent.
    pub(crate) address: SocketAddr,
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
        address: SocketAddr,
        lifetime: Duration,
        now: Instant,
    ) -> bool {
        let binding = Binding {
            contact,
            address,
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
        let address: SocketAddr = "127.0.0.1:5090".parse().unwrap();
        assert!(registrar.bind(
            "agent1",
            contact.clone(),
            address,
            Duration::from_secs(60),
            start
        ));
        assert!(!registrar.bind("agent1", contact, address, Duration::from_secs(60), start));
        let later = start + Duration::from_secs(59);
        assert_eq!(registrar.lookup("agent1", later).unwrap().address, address);
        assert!(registrar.expire(later).is_empty());
        let lapsed = start + Duration::from_secs(60);
        assert!(registrar.lookup("agent1", lapsed).is_none());
        assert_eq!(registrar.expire(lapsed), ["agent1"]);
        assert!(registrar.expire(lapsed).is_empty());
        assert!(!registrar.unbind("agent1"));
    }
}
