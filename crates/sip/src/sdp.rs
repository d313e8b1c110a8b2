//! The SDP this server needs for its SIP legs (RFC 8866, offer/answer per RFC 3264):
//! G.711 audio (PCMU 0, PCMA 8) with RFC 4733 telephone-events over plain RTP.
//!
//! [`parse`] reads any well-formed description and keeps what an audio answer needs;
//! [`SessionDescription::audio`] picks the stream; [`answer`] and [`offer`] write ours.
//! Inside an established session (a re-INVITE), [`answer_update`] and [`offer_update`]
//! keep our `o=` version when nothing changed and raise it by one when something did
//! (RFC 3264 §8). Hold (§8.4, RFC 6337 §5) is the offered direction: `sendonly` or
//! `inactive`, or the old RFC 2543 form, a connection address of `0.0.0.0`.
//! Video, ICE, crypto and the like are parsed past and answered with port 0.

use std::fmt::Write as _;
use std::net::IpAddr;

use crate::Error;

/// A parsed session description.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionDescription {
    /// `o=` session id, echoed nowhere but useful in logs.
    pub session_id: String,
    /// Session-level `c=` address.
    pub connection: Option<IpAddr>,
    /// Session-level direction attribute.
    pub direction: Option<Direction>,
    /// Every `m=` section, in order (an answer has as many).
    pub media: Vec<Media>,
}

/// One `m=` section.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Media {
    /// `audio`, `video`, …
    pub kind: String,
    /// The port; 0 means the stream is declined.
    pub port: u16,
    /// `RTP/AVP` and friends.
    pub protocol: String,
    /// The format list as written (payload type numbers for RTP).
    pub formats: Vec<String>,
    /// Media-level `c=` address.
    pub connection: Option<IpAddr>,
    /// `a=rtpmap` lines.
    pub rtpmaps: Vec<RtpMap>,
    /// `a=fmtp` lines: payload type and parameters.
    pub fmtps: Vec<(u8, String)>,
    /// `a=ptime`, in milliseconds.
    pub ptime: Option<u32>,
    /// Media-level direction attribute.
    pub direction: Option<Direction>,
}

/// An `a=rtpmap:<pt> <name>/<clock>[/<channels>]` line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RtpMap {
    /// The payload type.
    pub payload_type: u8,
    /// The encoding name (`PCMU`, `telephone-event`).
    pub encoding: String,
    /// The clock rate.
    pub clock_rate: u32,
    /// The channel count, when given.
    pub channels: Option<u8>,
}

/// Which way media flows, from the describing side's point of view.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// Both ways (the default).
    SendRecv,
    /// Only from the describer.
    SendOnly,
    /// Only to the describer.
    RecvOnly,
    /// Neither way (hold).
    Inactive,
}

/// The G.711 codecs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Codec {
    /// µ-law, static payload type 0.
    Pcmu,
    /// A-law, static payload type 8.
    Pcma,
}

/// The audio stream an offer (or answer) describes, resolved for use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Audio {
    /// Index of the `m=` section.
    pub index: usize,
    /// Where to send RTP.
    pub address: IpAddr,
    /// The RTP port.
    pub port: u16,
    /// G.711 codecs offered, in the offerer's order of preference.
    pub codecs: Vec<Codec>,
    /// The payload type of `telephone-event/8000`, if offered.
    pub telephone_event: Option<u8>,
    /// The `fmtp` of that telephone-event (`0-16`), if given.
    pub telephone_event_events: Option<String>,
    /// Packet time in milliseconds, if given.
    pub ptime: Option<u32>,
    /// The effective direction (media level over session level; default sendrecv). A
    /// connection address of `0.0.0.0` (RFC 2543's hold) takes away the receiving half:
    /// sendrecv reads as sendonly, recvonly as inactive.
    pub direction: Direction,
}

/// What our side of an answer or offer says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Local {
    /// Our RTP address.
    pub address: IpAddr,
    /// Our RTP port.
    pub port: u16,
    /// `o=` session id (the caller keeps it stable for the session).
    pub session_id: u64,
    /// `o=` version, raised by the caller for each new description.
    pub version: u64,
    /// Codecs we accept, in our order of preference.
    pub codecs: Vec<Codec>,
    /// Packet time we send (20 ms is what every G.711 peer expects).
    pub ptime: u32,
}

/// The outcome of answering an offer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    /// The answer's text.
    pub sdp: String,
    /// The codec both sides will use.
    pub codec: Codec,
    /// The telephone-event payload type both sides will use, if any.
    pub telephone_event: Option<u8>,
    /// The offer's audio stream: where to send.
    pub remote: Audio,
    /// Our direction in the answer.
    pub direction: Direction,
}

impl Codec {
    /// The static payload type.
    pub fn payload_type(self) -> u8 {
        match self {
            Self::Pcmu => 0,
            Self::Pcma => 8,
        }
    }

    fn name(self) -> &'static str {
        match self {
            Self::Pcmu => "PCMU",
            Self::Pcma => "PCMA",
        }
    }
}

impl Direction {
    fn attribute(self) -> &'static str {
        match self {
            Self::SendRecv => "sendrecv",
            Self::SendOnly => "sendonly",
            Self::RecvOnly => "recvonly",
            Self::Inactive => "inactive",
        }
    }

    /// Whether the describer asks not to be sent media: the offer of a hold.
    pub fn is_hold(self) -> bool {
        matches!(self, Self::SendOnly | Self::Inactive)
    }

    /// The direction an answer takes to this offered one (RFC 3264 §6.1).
    pub fn answer(self) -> Self {
        match self {
            Self::SendOnly => Self::RecvOnly,
            Self::RecvOnly => Self::SendOnly,
            other => other,
        }
    }
}

/// Parses a session description. Lines end with CRLF or LF; each is `<letter>=<value>`.
pub fn parse(body: &[u8]) -> Result<SessionDescription, Error> {
    let text = std::str::from_utf8(body).map_err(|_| Error::Sdp {
        line: 1,
        detail: "not UTF-8",
    })?;
    let mut description = SessionDescription {
        session_id: String::new(),
        connection: None,
        direction: None,
        media: Vec::new(),
    };
    let mut seen_version = false;
    for (index, raw) in text.lines().enumerate() {
        let line = index + 1;
        let fail = |detail| Error::Sdp { line, detail };
        if raw.is_empty() {
            continue;
        }
        let (kind, value) = raw.split_once('=').ok_or(fail("not type=value"))?;
        let [kind] = kind.as_bytes() else {
            return Err(fail("type is not one letter"));
        };
        if !seen_version {
            if *kind != b'v' || value != "0" {
                return Err(fail("must start with v=0"));
            }
            seen_version = true;
            continue;
        }
        match kind {
            b'o' => {
                let fields: Vec<&str> = value.split(' ').collect();
                if fields.len() != 6 {
                    return Err(fail("o= needs six fields"));
                }
                description.session_id = fields[1].into();
            }
            b'c' => {
                let address = connection_address(value).ok_or(fail("bad c= line"))?;
                match description.media.last_mut() {
                    Some(media) => media.connection = Some(address),
                    None => description.connection = Some(address),
                }
            }
            b'm' => description
                .media
                .push(media_line(value).ok_or(fail("bad m= line"))?),
            b'a' => {
                let attribute = attribute(value).map_err(fail)?;
                match (description.media.last_mut(), attribute) {
                    (Some(media), Attribute::RtpMap(map)) => media.rtpmaps.push(map),
                    (Some(media), Attribute::Fmtp(pt, params)) => media.fmtps.push((pt, params)),
                    (Some(media), Attribute::Ptime(ms)) => media.ptime = Some(ms),
                    (Some(media), Attribute::Direction(direction)) => {
                        media.direction = Some(direction);
                    }
                    (None, Attribute::Direction(direction)) => {
                        description.direction = Some(direction);
                    }
                    _ => {}
                }
            }
            kind if kind.is_ascii_lowercase() => {}
            _ => return Err(fail("type is not a lower-case letter")),
        }
    }
    if !seen_version {
        return Err(Error::Sdp {
            line: 1,
            detail: "empty description",
        });
    }
    Ok(description)
}

impl SessionDescription {
    /// The first audio stream over RTP/AVP with a port and a connection address.
    pub fn audio(&self) -> Result<Audio, Error> {
        let (index, media) = self
            .media
            .iter()
            .enumerate()
            .find(|(_, media)| {
                media.kind == "audio"
                    && media.port != 0
                    && media.protocol.eq_ignore_ascii_case("RTP/AVP")
            })
            .ok_or(Error::SdpNoAudio)?;
        let address = media
            .connection
            .or(self.connection)
            .ok_or(Error::SdpNoAudio)?;
        let mut codecs = Vec::new();
        let mut telephone_event = None;
        for format in &media.formats {
            let Ok(pt) = format.parse::<u8>() else {
                continue;
            };
            let map = media.rtpmaps.iter().find(|map| map.payload_type == pt);
            let at_8k = |name: &str| {
                map.is_some_and(|map| {
                    map.encoding.eq_ignore_ascii_case(name) && map.clock_rate == 8000
                })
            };
            // Static types 0 and 8 need no rtpmap; a dynamic one can name a G.711 codec too.
            let codec = match pt {
                0 if map.is_none() || at_8k("PCMU") => Some(Codec::Pcmu),
                8 if map.is_none() || at_8k("PCMA") => Some(Codec::Pcma),
                96..=127 if at_8k("PCMU") => Some(Codec::Pcmu),
                96..=127 if at_8k("PCMA") => Some(Codec::Pcma),
                _ => None,
            };
            if let Some(codec) = codec.filter(|codec| !codecs.contains(codec)) {
                codecs.push(codec);
            }
            if telephone_event.is_none() && at_8k("telephone-event") {
                telephone_event = Some(pt);
            }
        }
        let events = telephone_event.and_then(|pt| {
            let fmtp = media.fmtps.iter().find(|(format, _)| *format == pt);
            fmtp.map(|(_, params)| params.clone())
        });
        let mut direction = media
            .direction
            .or(self.direction)
            .unwrap_or(Direction::SendRecv);
        // RFC 2543's hold: nowhere to send to means the describer receives nothing.
        if address.is_unspecified() {
            direction = match direction {
                Direction::SendRecv | Direction::SendOnly => Direction::SendOnly,
                Direction::RecvOnly | Direction::Inactive => Direction::Inactive,
            };
        }
        Ok(Audio {
            index,
            address,
            port: media.port,
            codecs,
            telephone_event,
            telephone_event_events: events,
            ptime: media.ptime,
            direction,
        })
    }
}

/// Answers an offer: the first of our codecs the offer has, telephone-events if offered,
/// the answering direction, and every other `m=` section declined with port 0.
pub fn answer(offer: &SessionDescription, local: &Local) -> Result<Answer, Error> {
    let remote = offer.audio()?;
    let codec = local
        .codecs
        .iter()
        .copied()
        .find(|codec| remote.codecs.contains(codec))
        .ok_or(Error::SdpNoCommonCodec)?;
    let direction = remote.direction.answer();
    let mut sdp = header_lines(local);
    for (index, media) in offer.media.iter().enumerate() {
        if index != remote.index {
            let formats = media.formats.join(" ");
            let _ = write!(sdp, "m={} 0 {} {formats}\r\n", media.kind, media.protocol);
            continue;
        }
        let events = remote.telephone_event.map(|pt| {
            (
                pt,
                remote.telephone_event_events.as_deref().unwrap_or("0-16"),
            )
        });
        push_audio(&mut sdp, local, &[codec], events, direction);
    }
    Ok(Answer {
        sdp,
        codec,
        telephone_event: remote.telephone_event,
        remote,
        direction,
    })
}

/// Answers an offer made inside an established session (a re-INVITE) whose last
/// description from us was `previous`, written with `local.version`. A refresh that
/// changes nothing gets the same description and version back; any change raises
/// `local.version` by one (RFC 3264 §8: the version goes up exactly when the
/// description changes).
pub fn answer_update(
    offer: &SessionDescription,
    local: &mut Local,
    previous: &str,
) -> Result<Answer, Error> {
    let same = answer(offer, local)?;
    if same.sdp == previous {
        return Ok(same);
    }
    local.version = local.version.wrapping_add(1);
    answer(offer, local)
}

/// Writes our offer inside an established session (a re-INVITE that came without one),
/// versioned like [`answer_update`].
pub fn offer_update(local: &mut Local, direction: Direction, previous: &str) -> String {
    let same = offer(local, direction);
    if same == previous {
        return same;
    }
    local.version = local.version.wrapping_add(1);
    offer(local, direction)
}

/// Writes an offer (for calls the server places to SIP phones): our codecs and
/// telephone-event on payload type 101.
pub fn offer(local: &Local, direction: Direction) -> String {
    let mut sdp = header_lines(local);
    push_audio(
        &mut sdp,
        local,
        &local.codecs,
        Some((101, "0-16")),
        direction,
    );
    sdp
}

fn header_lines(local: &Local) -> String {
    let family = if local.address.is_ipv4() {
        "IP4"
    } else {
        "IP6"
    };
    format!(
        "v=0\r\no=genkan {} {} IN {family} {}\r\ns=genkan\r\nc=IN {family} {}\r\nt=0 0\r\n",
        local.session_id, local.version, local.address, local.address
    )
}

fn push_audio(
    sdp: &mut String,
    local: &Local,
    codecs: &[Codec],
    events: Option<(u8, &str)>,
    direction: Direction,
) {
    let mut formats: Vec<String> = codecs
        .iter()
        .map(|codec| codec.payload_type().to_string())
        .collect();
    formats.extend(events.map(|(pt, _)| pt.to_string()));
    let _ = write!(
        sdp,
        "m=audio {} RTP/AVP {}\r\n",
        local.port,
        formats.join(" ")
    );
    for codec in codecs {
        let _ = write!(
            sdp,
            "a=rtpmap:{} {}/8000\r\n",
            codec.payload_type(),
            codec.name()
        );
    }
    if let Some((pt, params)) = events {
        let _ = write!(
            sdp,
            "a=rtpmap:{pt} telephone-event/8000\r\na=fmtp:{pt} {params}\r\n"
        );
    }
    let _ = write!(
        sdp,
        "a=ptime:{}\r\na={}\r\n",
        local.ptime,
        direction.attribute()
    );
}

fn connection_address(value: &str) -> Option<IpAddr> {
    let mut fields = value.split(' ');
    let (net, family, address) = (fields.next()?, fields.next()?, fields.next()?);
    if net != "IN" || fields.next().is_some() {
        return None;
    }
    // A multicast address may carry /ttl; unicast ones are what we use.
    let address = address.split('/').next()?.parse::<IpAddr>().ok()?;
    let family_fits = match family {
        "IP4" => address.is_ipv4(),
        "IP6" => address.is_ipv6(),
        _ => false,
    };
    family_fits.then_some(address)
}

fn media_line(value: &str) -> Option<Media> {
    let mut fields = value.split(' ');
    let kind = fields.next().filter(|kind| !kind.is_empty())?;
    // `port/count` is legal; the count does not matter for one audio stream.
    let port = fields.next()?.split('/').next()?.parse::<u16>().ok()?;
    let protocol = fields.next().filter(|protocol| !protocol.is_empty())?;
    let formats: Vec<String> = fields.map(str::to_owned).collect();
    if formats.is_empty() || formats.iter().any(String::is_empty) {
        return None;
    }
    Some(Media {
        kind: kind.into(),
        port,
        protocol: protocol.into(),
        formats,
        connection: None,
        rtpmaps: Vec::new(),
        fmtps: Vec::new(),
        ptime: None,
        direction: None,
    })
}

enum Attribute {
    RtpMap(RtpMap),
    Fmtp(u8, String),
    Ptime(u32),
    Direction(Direction),
    Other,
}

fn attribute(value: &str) -> Result<Attribute, &'static str> {
    let (name, rest) = value.split_once(':').unwrap_or((value, ""));
    Ok(match name {
        "rtpmap" => {
            let (pt, encoding) = rest.split_once(' ').ok_or("bad rtpmap")?;
            let mut parts = encoding.split('/');
            let name = parts
                .next()
                .filter(|name| !name.is_empty())
                .ok_or("bad rtpmap")?;
            let clock_rate = parts
                .next()
                .and_then(|rate| rate.parse().ok())
                .ok_or("bad rtpmap")?;
            let channels = match parts.next() {
                Some(count) => Some(count.parse().map_err(|_| "bad rtpmap")?),
                None => None,
            };
            Attribute::RtpMap(RtpMap {
                payload_type: pt.parse().map_err(|_| "bad rtpmap")?,
                encoding: name.into(),
                clock_rate,
                channels,
            })
        }
        "fmtp" => {
            let (pt, params) = rest.split_once(' ').ok_or("bad fmtp")?;
            Attribute::Fmtp(pt.parse().map_err(|_| "bad fmtp")?, params.trim().into())
        }
        "ptime" => Attribute::Ptime(rest.trim().parse().map_err(|_| "bad ptime")?),
        "sendrecv" => Attribute::Direction(Direction::SendRecv),
        "sendonly" => Attribute::Direction(Direction::SendOnly),
        "recvonly" => Attribute::Direction(Direction::RecvOnly),
        "inactive" => Attribute::Direction(Direction::Inactive),
        _ => Attribute::Other,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use expect_test::expect;

    const CARRIER_OFFER: &str = "v=0\r\n\
        o=carrier 4711 1 IN IP4 192.0.2.10\r\n\
        s=-\r\n\
        c=IN IP4 192.0.2.10\r\n\
        t=0 0\r\n\
        m=audio 40000 RTP/AVP 8 0 18 101\r\n\
        a=rtpmap:8 PCMA/8000\r\n\
        a=rtpmap:0 PCMU/8000\r\n\
        a=rtpmap:18 G729/8000\r\n\
        a=rtpmap:101 telephone-event/8000\r\n\
        a=fmtp:101 0-15\r\n\
        a=ptime:20\r\n\
        a=sendrecv\r\n\
        m=video 40002 RTP/AVP 96\r\n\
        a=rtpmap:96 H264/90000\r\n";

    fn local() -> Local {
        Local {
            address: "127.0.0.1".parse().unwrap(),
            port: 20000,
            session_id: 1,
            version: 1,
            codecs: vec![Codec::Pcmu, Codec::Pcma],
            ptime: 20,
        }
    }

    #[test]
    fn reads_the_audio_stream_of_a_carrier_offer() {
        let offer = parse(CARRIER_OFFER.as_bytes()).unwrap();
        let audio = offer.audio().unwrap();
        assert_eq!(audio.address.to_string(), "192.0.2.10");
        assert_eq!(audio.port, 40000);
        assert_eq!(audio.codecs, [Codec::Pcma, Codec::Pcmu]);
        assert_eq!(audio.telephone_event, Some(101));
        assert_eq!(audio.telephone_event_events.as_deref(), Some("0-15"));
        assert_eq!(
            (audio.ptime, audio.direction),
            (Some(20), Direction::SendRecv)
        );
    }

    #[test]
    fn answers_with_our_preference_and_declines_the_rest() {
        let offer = parse(CARRIER_OFFER.as_bytes()).unwrap();
        let answer = answer(&offer, &local()).unwrap();
        assert_eq!(answer.codec, Codec::Pcmu);
        expect![[r#"
            v=0
            o=genkan 1 1 IN IP4 127.0.0.1
            s=genkan
            c=IN IP4 127.0.0.1
            t=0 0
            m=audio 20000 RTP/AVP 0 101
            a=rtpmap:0 PCMU/8000
            a=rtpmap:101 telephone-event/8000
            a=fmtp:101 0-15
            a=ptime:20
            a=sendrecv
            m=video 0 RTP/AVP 96
        "#]]
        .assert_eq(&answer.sdp.replace("\r\n", "\n"));
        let again = parse(answer.sdp.as_bytes()).unwrap().audio().unwrap();
        assert_eq!(again.codecs, [Codec::Pcmu]);
        assert_eq!(again.telephone_event, Some(101));
    }

    #[test]
    fn hold_offers_get_the_mirrored_direction() {
        let held = CARRIER_OFFER.replace("a=sendrecv", "a=sendonly");
        let answer = answer(&parse(held.as_bytes()).unwrap(), &local()).unwrap();
        assert_eq!(answer.direction, Direction::RecvOnly);
        assert!(answer.sdp.contains("a=recvonly\r\n"));
    }

    #[test]
    fn every_hold_form_is_answered_with_its_mirror() {
        let offer_with = |direction: &str, address: &str| {
            CARRIER_OFFER
                .replace("a=sendrecv", direction)
                .replace("c=IN IP4 192.0.2.10", &format!("c=IN IP4 {address}"))
        };
        for (direction, address, hold, answered) in [
            ("a=sendrecv", "192.0.2.10", false, "a=sendrecv"),
            ("a=sendonly", "192.0.2.10", true, "a=recvonly"),
            ("a=inactive", "192.0.2.10", true, "a=inactive"),
            ("a=recvonly", "192.0.2.10", false, "a=sendonly"),
            // No direction at all is sendrecv.
            ("a=ptime:20", "192.0.2.10", false, "a=sendrecv"),
            // RFC 2543's hold, alone and with the newer attribute beside it.
            ("a=ptime:20", "0.0.0.0", true, "a=recvonly"),
            ("a=sendonly", "0.0.0.0", true, "a=recvonly"),
            ("a=recvonly", "0.0.0.0", true, "a=inactive"),
        ] {
            let offer = parse(offer_with(direction, address).as_bytes()).unwrap();
            let audio = offer.audio().unwrap();
            assert_eq!(audio.direction.is_hold(), hold, "{direction} {address}");
            let answer = answer(&offer, &local()).unwrap();
            assert!(
                answer.sdp.contains(&format!("{answered}\r\n")),
                "{direction} {address}: {}",
                answer.sdp
            );
            assert_eq!(answer.sdp.matches("a=").count(), 5, "one direction line");
        }
        // A session-level direction counts when the stream has none.
        let session_level = CARRIER_OFFER
            .replace("a=sendrecv\r\n", "")
            .replace("t=0 0\r\n", "t=0 0\r\na=inactive\r\n");
        let audio = parse(session_level.as_bytes()).unwrap().audio().unwrap();
        assert_eq!(audio.direction, Direction::Inactive);
    }

    #[test]
    fn a_changed_answer_raises_the_version_and_a_refresh_keeps_it() {
        let offer = parse(CARRIER_OFFER.as_bytes()).unwrap();
        let mut ours = local();
        let first = answer(&offer, &ours).unwrap();
        // A session refresh: the same offer again.
        let refresh = answer_update(&offer, &mut ours, &first.sdp).unwrap();
        assert_eq!(
            (refresh.sdp.as_str(), ours.version),
            (first.sdp.as_str(), 1)
        );
        // Hold: the description changes, the version goes up by one.
        let held = parse(CARRIER_OFFER.replace("a=sendrecv", "a=sendonly").as_bytes()).unwrap();
        let hold = answer_update(&held, &mut ours, &refresh.sdp).unwrap();
        assert_eq!(ours.version, 2);
        assert!(
            hold.sdp.contains("o=genkan 1 2 IN IP4 127.0.0.1\r\n"),
            "{}",
            hold.sdp
        );
        assert!(hold.sdp.contains("a=recvonly\r\n"));
        let again = answer_update(&held, &mut ours, &hold.sdp).unwrap();
        assert_eq!((again.sdp, ours.version), (hold.sdp.clone(), 2));
        let resumed = answer_update(&offer, &mut ours, &hold.sdp).unwrap();
        assert_eq!(ours.version, 3);
        assert!(resumed.sdp.contains("o=genkan 1 3 "), "{}", resumed.sdp);
        assert!(resumed.sdp.contains("a=sendrecv\r\n"));
        // What cannot be answered leaves the version alone.
        let g729 = parse(CARRIER_OFFER.replace("8 0 18 101", "18").as_bytes()).unwrap();
        assert!(answer_update(&g729, &mut ours, &resumed.sdp).is_err());
        assert_eq!(ours.version, 3);
        // Our own offer for a re-INVITE without one: versioned the same way.
        let offered = offer_update(&mut ours, Direction::SendRecv, &resumed.sdp);
        assert_eq!(ours.version, 4);
        assert_eq!(
            offer_update(&mut ours, Direction::SendRecv, &offered),
            offered
        );
        assert_eq!(ours.version, 4);
    }

    #[test]
    fn media_level_connection_wins_and_static_types_need_no_rtpmap() {
        let text = "v=0\no=- 1 1 IN IP4 0.0.0.0\ns=-\nc=IN IP4 192.0.2.1\nt=0 0\na=recvonly\nm=audio 5004 RTP/AVP 0\nc=IN IP6 2001:db8::5\n";
        let audio = parse(text.as_bytes()).unwrap().audio().unwrap();
        assert_eq!(audio.address.to_string(), "2001:db8::5");
        assert_eq!(
            (audio.codecs.as_slice(), audio.direction),
            (&[Codec::Pcmu][..], Direction::RecvOnly)
        );
    }

    #[test]
    fn refuses_what_it_cannot_answer() {
        let g729_only = CARRIER_OFFER.replace("8 0 18 101", "18 101");
        assert_eq!(
            answer(&parse(g729_only.as_bytes()).unwrap(), &local()),
            Err(Error::SdpNoCommonCodec)
        );
        let no_audio = "v=0\r\no=- 1 1 IN IP4 1.2.3.4\r\ns=-\r\nc=IN IP4 1.2.3.4\r\nt=0 0\r\nm=audio 0 RTP/AVP 0\r\n";
        assert_eq!(
            parse(no_audio.as_bytes()).unwrap().audio(),
            Err(Error::SdpNoAudio)
        );
        for (bad, line) in [
            ("o=x\r\n", 1),
            ("v=0\r\nc=IN IP4 999.1.1.1\r\n", 2),
            ("v=0\r\nm=audio x RTP/AVP 0\r\n", 2),
            ("v=0\r\nm=audio 1 RTP/AVP 0\r\na=rtpmap:zz PCMU/8000\r\n", 3),
            ("v=0\r\nno equals\r\n", 2),
            ("v=0\r\nX=1\r\n", 2),
        ] {
            assert!(
                matches!(parse(bad.as_bytes()), Err(Error::Sdp { line: l, .. }) if l == line),
                "{bad}"
            );
        }
    }

    #[test]
    fn offers_list_our_codecs_and_events() {
        let text = offer(&local(), Direction::SendRecv);
        assert!(text.contains("m=audio 20000 RTP/AVP 0 8 101\r\n"), "{text}");
        let audio = parse(text.as_bytes()).unwrap().audio().unwrap();
        assert_eq!(audio.codecs, [Codec::Pcmu, Codec::Pcma]);
    }
}
