//! Dialogs (RFC 3261 §12): their identifier, the state a UA keeps for one, and the
//! requests sent inside it (BYE, re-INVITE, the ACK for a 2xx) with the route set applied.

use std::fmt;

use crate::Error;
use crate::header::{CSeq, Contact, NameAddr, Via};
use crate::message::{Headers, Method, Request, Response};
use crate::uri::Uri;

/// Call-ID plus both tags: what makes a dialog unique at one UA.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct DialogId {
    /// The Call-ID.
    pub call_id: String,
    /// Our tag.
    pub local_tag: String,
    /// The peer's tag.
    pub remote_tag: String,
}

impl DialogId {
    /// The dialog a received in-dialog request belongs to (we are on its To side).
    pub fn of_request(request: &Request) -> Option<Self> {
        let headers = &request.headers;
        Some(Self {
            call_id: headers.call_id.clone(),
            local_tag: headers.to.tag()?.into(),
            remote_tag: headers.from.tag()?.into(),
        })
    }

    /// The dialog a response to our request belongs to (we are on its From side).
    pub fn of_response(response: &Response) -> Option<Self> {
        let headers = &response.headers;
        Some(Self {
            call_id: headers.call_id.clone(),
            local_tag: headers.from.tag()?.into(),
            remote_tag: headers.to.tag()?.into(),
        })
    }
}

impl fmt::Display for DialogId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{};local={};remote={}",
            self.call_id, self.local_tag, self.remote_tag
        )
    }
}

/// The state one side keeps for a dialog.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dialog {
    /// The identifier.
    pub id: DialogId,
    /// Our address with our tag: the From of our requests.
    pub local: NameAddr,
    /// The peer's address with its tag: the To of our requests.
    pub remote: NameAddr,
    /// Our Contact, sent in target-refreshing requests (re-INVITE).
    pub local_contact: Uri,
    /// The CSeq number of the last request we sent.
    pub local_seq: u32,
    /// The highest CSeq number the peer has used, once it has sent a request.
    pub remote_seq: Option<u32>,
    /// Where our requests go (the peer's Contact).
    pub remote_target: Uri,
    /// Proxies our requests pass, in the order we visit them.
    pub route_set: Vec<NameAddr>,
}

impl Dialog {
    /// The dialog a UAS has after answering `request` (an INVITE) with `response` (a
    /// 1xx with a To tag, or a 2xx), both carrying a Contact (§12.1.1).
    pub fn as_uas(request: &Request, response: &Response) -> Result<Self, Error> {
        let local = response.headers.to.clone();
        let remote = request.headers.from.clone();
        let (Some(local_tag), Some(remote_tag)) = (local.tag(), remote.tag()) else {
            return Err(Error::NotADialog("a tag is missing"));
        };
        Ok(Self {
            id: DialogId {
                call_id: request.headers.call_id.clone(),
                local_tag: local_tag.into(),
                remote_tag: remote_tag.into(),
            },
            local_contact: first_contact(&response.headers)?,
            remote_target: first_contact(&request.headers)?,
            local_seq: 0,
            remote_seq: Some(request.headers.cseq.seq),
            route_set: request.headers.record_route.clone(),
            local,
            remote,
        })
    }

    /// The dialog a UAC has after `request` (our INVITE) got `response` (§12.1.2). The
    /// route set is the response's Record-Route reversed.
    pub fn as_uac(request: &Request, response: &Response) -> Result<Self, Error> {
        let local = request.headers.from.clone();
        let remote = response.headers.to.clone();
        let (Some(local_tag), Some(remote_tag)) = (local.tag(), remote.tag()) else {
            return Err(Error::NotADialog("a tag is missing"));
        };
        Ok(Self {
            id: DialogId {
                call_id: request.headers.call_id.clone(),
                local_tag: local_tag.into(),
                remote_tag: remote_tag.into(),
            },
            local_contact: first_contact(&request.headers)?,
            remote_target: first_contact(&response.headers)?,
            local_seq: request.headers.cseq.seq,
            remote_seq: None,
            route_set: response
                .headers
                .record_route
                .iter()
                .rev()
                .cloned()
                .collect(),
            local,
            remote,
        })
    }

    /// A new request in the dialog (BYE, re-INVITE, INFO, …) with the next CSeq number.
    /// `via` carries a fresh branch from the caller. Target-refreshing methods get our
    /// Contact. The body is the caller's to fill.
    pub fn request(&mut self, method: Method, via: Via) -> Request {
        self.local_seq = self.local_seq.saturating_add(1).min((1 << 31) - 1);
        let carries_contact = matches!(
            method,
            Method::Invite | Method::Update | Method::Subscribe | Method::Notify | Method::Refer
        );
        let mut request = self.build(method, self.local_seq, via);
        if carries_contact {
            let contact = NameAddr::new(self.local_contact.clone());
            request.headers.contact.push(Contact::Address(contact));
        }
        request
    }

    /// The ACK for a 2xx to the INVITE numbered `invite_seq` (§13.2.2.4). Its `via`
    /// needs a branch of its own.
    pub fn ack(&self, invite_seq: u32, via: Via) -> Request {
        self.build(Method::Ack, invite_seq, via)
    }

    /// Checks a request the peer sent in this dialog and updates the dialog: CSeq must not
    /// go backwards (answer 500 otherwise, §12.2.2), and a re-INVITE or UPDATE with a
    /// Contact moves the remote target.
    pub fn receive(&mut self, request: &Request) -> Result<(), Error> {
        let seq = request.headers.cseq.seq;
        let in_order = matches!(request.method, Method::Ack | Method::Cancel);
        if let Some(last) = self.remote_seq
            && seq < last
            && !in_order
        {
            return Err(Error::CSeqOutOfOrder { got: seq, last });
        }
        self.remote_seq = Some(self.remote_seq.map_or(seq, |last| last.max(seq)));
        if matches!(request.method, Method::Invite | Method::Update)
            && let Ok(target) = first_contact(&request.headers)
        {
            self.remote_target = target;
        }
        Ok(())
    }

    /// Request-URI and Route per §12.2.1.1: loose routing when the first route has `lr`,
    /// else the strict-router form (first route as Request-URI, remote target last).
    fn build(&self, method: Method, seq: u32, via: Via) -> Request {
        let (uri, route) = match self.route_set.first() {
            None => (self.remote_target.clone(), Vec::new()),
            Some(first) if first.uri.as_sip().is_some_and(|uri| uri.is_loose_router()) => {
                (self.remote_target.clone(), self.route_set.clone())
            }
            Some(first) => {
                let mut route: Vec<NameAddr> = self.route_set[1..].to_vec();
                route.push(NameAddr::new(self.remote_target.clone()));
                (first.uri.clone(), route)
            }
        };
        let cseq = CSeq { seq, method };
        let mut headers = Headers::new(
            self.local.clone(),
            self.remote.clone(),
            &self.id.call_id,
            cseq.clone(),
        );
        headers.via = vec![via];
        headers.max_forwards = Some(70);
        headers.route = route;
        Request {
            method: cseq.method,
            uri,
            headers,
            body: Vec::new(),
        }
    }
}

fn first_contact(headers: &Headers) -> Result<Uri, Error> {
    headers
        .contact
        .iter()
        .find_map(|contact| match contact {
            Contact::Address(address) => Some(address.uri.clone()),
            Contact::Wildcard => None,
        })
        .ok_or(Error::NotADialog("no Contact"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::message::{Message, Transport, response_to};
    use crate::parse::parse;
    use expect_test::expect;

    fn invite() -> Request {
        let text = "INVITE sip:service@genkan.example SIP/2.0\r\n\
            Via: SIP/2.0/UDP p2.example;branch=z9hG4bKp2\r\n\
            Via: SIP/2.0/UDP carrier.example;branch=z9hG4bKc\r\n\
            Record-Route: <sip:p2.example;lr>\r\n\
            Record-Route: <sip:p1.example;lr>\r\n\
            From: <sip:+81312345678@carrier.example>;tag=c1\r\n\
            To: <sip:service@genkan.example>\r\n\
            Call-ID: call-9\r\n\
            CSeq: 10 INVITE\r\n\
            Contact: <sip:+81312345678@192.0.2.7:5060>\r\n\
            Content-Length: 0\r\n\r\n";
        match parse(text.as_bytes(), Transport::Udp).unwrap() {
            Message::Request(request) => request,
            Message::Response(_) => panic!("response"),
        }
    }

    fn answered() -> (Request, Response) {
        let request = invite();
        let mut ok = response_to(&request, 200, "OK").with_to_tag("g1");
        let contact = Uri::parse("sip:genkan@127.0.0.1:5060").unwrap();
        ok.headers
            .contact
            .push(Contact::Address(NameAddr::new(contact)));
        ok.headers.record_route = request.headers.record_route.clone();
        (request, ok)
    }

    #[test]
    fn uas_dialog_sends_bye_along_the_recorded_route() {
        let (request, ok) = answered();
        let mut dialog = Dialog::as_uas(&request, &ok).unwrap();
        assert_eq!(dialog.id.to_string(), "call-9;local=g1;remote=c1");
        assert_eq!(
            DialogId::of_response(&ok).map(|id| id.remote_tag),
            Some("g1".into())
        );
        let via = Via::new(Transport::Udp, "127.0.0.1", Some(5060), "z9hG4bKbye");
        let bye = dialog.request(Method::Bye, via);
        expect![[r#"
            BYE sip:+81312345678@192.0.2.7:5060 SIP/2.0
            Via: SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bKbye
            Max-Forwards: 70
            Route: <sip:p2.example;lr>
            Route: <sip:p1.example;lr>
            From: <sip:service@genkan.example>;tag=g1
            To: <sip:+81312345678@carrier.example>;tag=c1
            Call-ID: call-9
            CSeq: 1 BYE
            Content-Length: 0

        "#]]
        .assert_eq(
            &String::from_utf8(bye.to_bytes())
                .unwrap()
                .replace("\r\n", "\n"),
        );
        assert_eq!(
            DialogId::of_request(&bye).map(|id| id.local_tag),
            Some("c1".into())
        );
    }

    #[test]
    fn uac_dialog_reverses_the_route_and_counts_cseq() {
        let (request, ok) = answered();
        let mut ours = request;
        ours.headers.from.set_tag("c1");
        let mut dialog = Dialog::as_uac(&ours, &ok).unwrap();
        assert_eq!(dialog.route_set[0].uri.to_string(), "sip:p1.example;lr");
        let via = || Via::new(Transport::Udp, "h", None, "z9hG4bKx");
        let reinvite = dialog.request(Method::Invite, via());
        assert_eq!(reinvite.headers.cseq.seq, 11);
        assert_eq!(reinvite.uri.to_string(), "sip:genkan@127.0.0.1:5060");
        assert_eq!(reinvite.headers.contact.len(), 1);
        let ack = dialog.ack(11, via());
        assert_eq!((ack.headers.cseq.seq, &ack.method), (11, &Method::Ack));
        assert_eq!(dialog.request(Method::Bye, via()).headers.cseq.seq, 12);
    }

    #[test]
    fn strict_routers_get_the_old_request_uri_form() {
        let (request, mut ok) = answered();
        ok.headers.record_route = vec![NameAddr::new(Uri::parse("sip:strict.example").unwrap())];
        let mut ours = request;
        ours.headers.from.set_tag("c1");
        let mut dialog = Dialog::as_uac(&ours, &ok).unwrap();
        let bye = dialog.request(Method::Bye, Via::new(Transport::Udp, "h", None, "z9hG4bKy"));
        assert_eq!(bye.uri.to_string(), "sip:strict.example");
        assert_eq!(bye.headers.route.len(), 1);
        assert_eq!(
            bye.headers.route[0].uri.to_string(),
            "sip:genkan@127.0.0.1:5060"
        );
    }

    #[test]
    fn peer_cseq_may_not_go_backwards() {
        let (request, ok) = answered();
        let mut dialog = Dialog::as_uas(&request, &ok).unwrap();
        let mut bye = request.clone();
        bye.method = Method::Bye;
        bye.headers.cseq = CSeq {
            seq: 9,
            method: Method::Bye,
        };
        assert_eq!(
            dialog.receive(&bye),
            Err(Error::CSeqOutOfOrder { got: 9, last: 10 })
        );
        bye.headers.cseq.seq = 11;
        assert_eq!(dialog.receive(&bye), Ok(()));
        assert_eq!(dialog.remote_seq, Some(11));
        let mut no_tag = ok;
        no_tag.headers.to.params.clear();
        assert_eq!(
            Dialog::as_uas(&request, &no_tag),
            Err(Error::NotADialog("a tag is missing"))
        );
    }
}
