//! The browser softphone: each agent's desk may hold one WebRTC connection to genkan, made
//! when the agent turns their phone on and kept between calls, so answering a call needs no
//! new negotiation. One task owns the one UDP socket every browser talks to and a `str0m::Rtc`
//! per connection (ICE-lite: genkan answers the browser's checks and learns its address from
//! them, so it never resolves the browser's mDNS names; DTLS-SRTP; PCMU only, so nothing is
//! transcoded between the browser and a carrier speaking G.711).
//!
//! While a call is bridged to a softphone, the WebRTC task hands the call's media task
//! (`media.rs`) plain RTP packets made from the browser's frames and sends the frames the
//! media task gives back; the media task treats the browser like any other leg. The stream to
//! the browser keeps one clock across calls (its RTP time only moves when audio is sent), and
//! the browser's stream is fed to each call as it comes.
//!
//! A second connection for the same agent (another tab, a reload) replaces the first, and a
//! call in progress moves to it. A connection that goes away during a call ends the call as
//! the agent's hang-up.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use contact::ContactId;
use media::rtp::{RtpHeader, RtpPacket};
use str0m::change::SdpOffer;
use str0m::media::{Frequency, MediaKind, MediaTime, Mid};
use str0m::net::{Protocol, Receive};
use str0m::{Candidate, Event, IceConnectionState, Input, Output, Rtc};
use tokio::net::UdpSocket;
use tokio::sync::mpsc::{UnboundedReceiver, UnboundedSender, unbounded_channel};
use tokio::sync::{oneshot, watch};

use crate::clock;

/// How long a connection may take to complete ICE and DTLS before it is dropped.
const CONNECT_WITHIN: Duration = Duration::from_secs(30);
/// The SSRC written on the RTP packets made from the browser's frames (the media task's
/// statistics need one; the browser's own is hidden by str0m's frame mode).
const BROWSER_SSRC: u32 = 0x6272_6f77;
/// PCMU's static payload type.
const PCMU: u8 = 0;

/// Why a softphone's offer was refused.
#[derive(Debug, thiserror::Error)]
pub enum OfferRefused {
    /// Not an SDP offer str0m can read.
    #[error("the offer is not valid SDP: {0}")]
    Malformed(String),
    /// The offer has no audio genkan can take (PCMU).
    #[error("the offer has no PCMU audio")]
    NoAudio,
    /// The voice task is not running (genkan is stopping).
    #[error("the voice service is stopping")]
    Stopped,
}

/// What the switch hears about softphones.
pub(crate) enum ToSwitch {
    /// The agent's softphone went away during this call: their hang-up.
    Gone { agent: String, contact: ContactId },
    /// The agent puts the call on hold from the desk (or takes it off); the reply says
    /// whether it is a call on their softphone.
    Hold {
        agent: String,
        contact: ContactId,
        on: bool,
        reply: oneshot::Sender<bool>,
    },
}

/// The handle the desk and the switch use.
#[derive(Clone)]
pub struct Softphones {
    requests: UnboundedSender<Request>,
    to_switch: UnboundedSender<ToSwitch>,
    /// Agents with a softphone connection, and that connection's number.
    connected: Arc<Mutex<BTreeMap<String, u64>>>,
}

/// A call's side of a softphone: RTP packets from the browser, and a way back.
pub(crate) struct BrowserLeg {
    pub(crate) incoming: UnboundedReceiver<Vec<u8>>,
    session: u64,
    requests: UnboundedSender<Request>,
}

impl BrowserLeg {
    /// One RTP packet for the browser (its payload is sent, its header is replaced).
    pub(crate) fn send(&self, packet: Vec<u8>) {
        let _ = self.requests.send(Request::Audio {
            session: self.session,
            packet,
        });
    }
}

pub(crate) enum Request {
    Offer {
        agent: String,
        sdp: String,
        reply: oneshot::Sender<Result<String, OfferRefused>>,
    },
    Close {
        agent: String,
    },
    Attach {
        session: u64,
        contact: ContactId,
        to_call: UnboundedSender<Vec<u8>>,
    },
    Detach {
        contact: ContactId,
    },
    Audio {
        session: u64,
        packet: Vec<u8>,
    },
}

impl Softphones {
    /// Takes the browser's SDP offer and returns genkan's answer; the agent's previous
    /// connection, if any, is replaced.
    pub async fn connect(&self, agent: &str, sdp: String) -> Result<String, OfferRefused> {
        let (reply, answer) = oneshot::channel();
        self.requests
            .send(Request::Offer {
                agent: agent.to_owned(),
                sdp,
                reply,
            })
            .map_err(|_| OfferRefused::Stopped)?;
        answer.await.map_err(|_| OfferRefused::Stopped)?
    }

    /// The agent turned their phone off (or closed the desk).
    pub fn close(&self, agent: &str) {
        let _ = self.requests.send(Request::Close {
            agent: agent.to_owned(),
        });
    }

    /// Puts the agent's call on hold or takes it off; `false` when it is not a call on their
    /// softphone.
    pub async fn hold(&self, agent: &str, contact: ContactId, on: bool) -> bool {
        let (reply, done) = oneshot::channel();
        let asked = self.to_switch.send(ToSwitch::Hold {
            agent: agent.to_owned(),
            contact,
            on,
            reply,
        });
        asked.is_ok() && done.await.unwrap_or(false)
    }

    /// Whether the agent's calls go to their browser.
    pub(crate) fn has(&self, agent: &str) -> bool {
        self.connected
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .contains_key(agent)
    }

    /// Bridges a call to the agent's softphone, if they have one.
    pub(crate) fn attach(&self, agent: &str, contact: ContactId) -> Option<BrowserLeg> {
        let session = *self
            .connected
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(agent)?;
        let (to_call, incoming) = unbounded_channel();
        self.requests
            .send(Request::Attach {
                session,
                contact,
                to_call,
            })
            .ok()?;
        Some(BrowserLeg {
            incoming,
            session,
            requests: self.requests.clone(),
        })
    }

    /// The call is over for the softphone.
    pub(crate) fn detach(&self, contact: ContactId) {
        let _ = self.requests.send(Request::Detach { contact });
    }
}

/// One browser's connection.
struct Session {
    agent: String,
    rtc: Rtc,
    /// The audio media, once the offer's m-line is known to str0m.
    mid: Option<Mid>,
    created: Instant,
    connected: bool,
    /// The next time str0m wants to be woken.
    timeout: Instant,
    /// The call bridged to this browser, and where its packets go.
    call: Option<(ContactId, UnboundedSender<Vec<u8>>)>,
    /// RTP time of the next frame to the browser (8 kHz samples).
    sent_samples: u64,
}

/// The WebRTC task's state.
pub(crate) struct WebRtc {
    socket: UdpSocket,
    /// The address browsers reach the socket at (the candidate genkan offers).
    candidate: SocketAddr,
    local: SocketAddr,
    sessions: BTreeMap<u64, Session>,
    next_session: u64,
    connected: Arc<Mutex<BTreeMap<String, u64>>>,
    /// Calls whose softphone went away: the switch ends them as the agent's hang-up.
    gone: UnboundedSender<ToSwitch>,
    crypto: Arc<str0m::crypto::CryptoProvider>,
}

/// Binds the softphones' socket. Returns the handle, the task, its inbox, and what the
/// switch hears of softphones.
pub(crate) async fn bind(
    listen: SocketAddr,
    public: std::net::IpAddr,
) -> anyhow::Result<(
    Softphones,
    WebRtc,
    UnboundedReceiver<Request>,
    UnboundedReceiver<ToSwitch>,
)> {
    use anyhow::Context;
    let socket = UdpSocket::bind(listen)
        .await
        .with_context(|| format!("voice.webrtc_listen: cannot listen on {listen} (UDP)"))?;
    let local = socket.local_addr()?;
    let (requests, inbox) = unbounded_channel();
    let (gone, gone_calls) = unbounded_channel();
    let connected = Arc::new(Mutex::new(BTreeMap::new()));
    let task = WebRtc {
        socket,
        candidate: SocketAddr::new(public, local.port()),
        local,
        sessions: BTreeMap::new(),
        next_session: 1,
        connected: Arc::clone(&connected),
        gone: gone.clone(),
        crypto: Arc::new(str0m::crypto::from_feature_flags()),
    };
    tracing::info!(%local, "softphones (WebRTC) on UDP");
    Ok((
        Softphones {
            requests,
            to_switch: gone,
            connected,
        },
        task,
        inbox,
        gone_calls,
    ))
}

impl WebRtc {
    /// The loop: datagrams, requests, str0m's timers.
    pub(crate) async fn run(
        mut self,
        mut requests: UnboundedReceiver<Request>,
        mut shutdown: watch::Receiver<bool>,
    ) {
        let mut buffer = vec![0u8; 2048];
        loop {
            let next = self.sessions.values().map(|session| session.timeout).min();
            let due = async {
                match next {
                    Some(at) => tokio::time::sleep_until(tokio::time::Instant::from_std(at)).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                received = self.socket.recv_from(&mut buffer) => {
                    if let Ok((len, source)) = received {
                        self.datagram(&buffer[..len], source);
                    }
                }
                Some(request) = requests.recv() => self.request(request),
                () = due => self.timeouts(),
                _ = shutdown.changed() => return,
            }
        }
    }

    fn datagram(&mut self, bytes: &[u8], source: SocketAddr) {
        let Ok(contents) = bytes.try_into() else {
            return; // neither STUN, DTLS, RTP nor RTCP
        };
        let input = Input::Receive(
            clock::instant_now(),
            Receive {
                proto: Protocol::Udp,
                source,
                destination: self.local,
                contents,
            },
        );
        let Some(id) = self
            .sessions
            .iter()
            .find(|(_, session)| session.rtc.accepts(&input))
            .map(|(id, _)| *id)
        else {
            return;
        };
        if let Some(session) = self.sessions.get_mut(&id)
            && let Err(error) = session.rtc.handle_input(input)
        {
            tracing::debug!(agent = %session.agent, %error, "softphone input refused");
        }
        self.drive(id);
    }

    fn timeouts(&mut self) {
        let now = clock::instant_now();
        let due: Vec<u64> = self
            .sessions
            .iter()
            .filter(|(_, session)| session.timeout <= now)
            .map(|(id, _)| *id)
            .collect();
        for id in due {
            if let Some(session) = self.sessions.get_mut(&id) {
                if !session.connected && now.duration_since(session.created) > CONNECT_WITHIN {
                    tracing::info!(agent = %session.agent, "softphone never connected");
                    self.remove(id);
                    continue;
                }
                let _ = session.rtc.handle_input(Input::Timeout(now));
            }
            self.drive(id);
        }
    }

    fn request(&mut self, request: Request) {
        match request {
            Request::Offer { agent, sdp, reply } => {
                let _ = reply.send(self.offer(agent, &sdp));
            }
            Request::Close { agent } => {
                let ids: Vec<u64> = self
                    .sessions
                    .iter()
                    .filter(|(_, session)| session.agent == agent)
                    .map(|(id, _)| *id)
                    .collect();
                for id in ids {
                    self.remove(id);
                }
            }
            Request::Attach {
                session,
                contact,
                to_call,
            } => {
                // A session gone meanwhile drops `to_call`, which tells the call's media.
                if let Some(session) = self.sessions.get_mut(&session) {
                    session.call = Some((contact, to_call));
                }
            }
            Request::Detach { contact } => {
                for session in self.sessions.values_mut() {
                    if session
                        .call
                        .as_ref()
                        .is_some_and(|(call, _)| *call == contact)
                    {
                        session.call = None;
                    }
                }
            }
            Request::Audio { session, packet } => {
                self.audio(session, &packet);
                self.drive(session);
            }
        }
    }

    fn offer(&mut self, agent: String, sdp: &str) -> Result<String, OfferRefused> {
        let offer = SdpOffer::from_sdp_string(sdp)
            .map_err(|error| OfferRefused::Malformed(error.to_string()))?;
        let now = clock::instant_now();
        let mut rtc = Rtc::builder()
            .set_crypto_provider(Arc::clone(&self.crypto))
            .set_ice_lite(true)
            .clear_codecs()
            .enable_pcmu(true, false)
            .build(now);
        let candidate = Candidate::host(self.candidate, "udp")
            .map_err(|error| OfferRefused::Malformed(error.to_string()))?;
        rtc.add_local_candidate(candidate);
        let answer = rtc
            .sdp_api()
            .accept_offer(offer)
            .map_err(|error| OfferRefused::Malformed(error.to_string()))?;
        let answer = answer.to_sdp_string();
        if !answer.contains("PCMU/8000") {
            return Err(OfferRefused::NoAudio);
        }
        // One softphone per agent: the newest connection wins and takes over a call.
        let previous: Vec<u64> = self
            .sessions
            .iter()
            .filter(|(_, session)| session.agent == agent)
            .map(|(id, _)| *id)
            .collect();
        let mut call = None;
        for id in previous {
            if let Some(mut old) = self.sessions.remove(&id) {
                call = call.or(old.call.take());
                old.rtc.disconnect();
                tracing::info!(%agent, "softphone replaced by a newer connection");
            }
        }
        let id = self.next_session;
        self.next_session += 1;
        self.connected
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(agent.clone(), id);
        tracing::info!(%agent, session = id, "softphone offered");
        self.sessions.insert(
            id,
            Session {
                agent,
                rtc,
                mid: None,
                created: now,
                connected: false,
                timeout: now,
                call,
                sent_samples: 0,
            },
        );
        self.drive(id);
        Ok(answer)
    }

    /// Sends one frame of the call's audio to the browser.
    fn audio(&mut self, id: u64, packet: &[u8]) {
        let Some(session) = self.sessions.get_mut(&id) else {
            return;
        };
        let (Some(mid), true) = (session.mid, session.connected) else {
            return;
        };
        let Ok(packet) = RtpPacket::parse(packet) else {
            return;
        };
        let Some(writer) = session.rtc.writer(mid) else {
            return;
        };
        let Some(pt) = writer
            .payload_params()
            .map(|params| params.pt())
            .find(|pt| **pt == PCMU)
        else {
            return;
        };
        let time = MediaTime::new(session.sent_samples, Frequency::EIGHT_KHZ);
        session.sent_samples += packet.payload.len() as u64;
        if let Err(error) = writer.write(pt, clock::instant_now(), time, packet.payload.to_vec()) {
            tracing::debug!(agent = %session.agent, %error, "softphone frame not sent");
        }
    }

    /// Runs a session's outputs until str0m waits: packets out, events handled.
    fn drive(&mut self, id: u64) {
        let mut ended = false;
        if let Some(session) = self.sessions.get_mut(&id) {
            loop {
                match session.rtc.poll_output() {
                    Ok(Output::Timeout(at)) => {
                        session.timeout = at;
                        break;
                    }
                    Ok(Output::Transmit(transmit)) => {
                        let _ = self
                            .socket
                            .try_send_to(&transmit.contents, transmit.destination);
                    }
                    Ok(Output::Event(event)) => {
                        if !session.event(event) {
                            ended = true;
                            break;
                        }
                    }
                    Err(error) => {
                        tracing::info!(agent = %session.agent, %error, "softphone failed");
                        ended = true;
                        break;
                    }
                }
            }
            ended |= !session.rtc.is_alive();
        }
        if ended {
            self.remove(id);
        }
    }

    fn remove(&mut self, id: u64) {
        let Some(mut session) = self.sessions.remove(&id) else {
            return;
        };
        session.rtc.disconnect();
        let mut connected = self
            .connected
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if connected.get(&session.agent) == Some(&id) {
            connected.remove(&session.agent);
        }
        drop(connected);
        tracing::info!(agent = %session.agent, session = id, "softphone closed");
        if let Some((contact, _)) = session.call.take() {
            let _ = self.gone.send(ToSwitch::Gone {
                agent: session.agent,
                contact,
            });
        }
    }
}

impl Session {
    /// Handles one of str0m's events; `false` when the connection is over.
    fn event(&mut self, event: Event) -> bool {
        match event {
            Event::Connected => {
                self.connected = true;
                tracing::info!(agent = %self.agent, "softphone connected");
            }
            Event::IceConnectionStateChange(IceConnectionState::Disconnected) => return false,
            Event::MediaAdded(added) if added.kind == MediaKind::Audio => {
                self.mid = Some(added.mid);
            }
            Event::MediaData(data) if !data.data.is_empty() && *data.pt == PCMU => {
                let Some((_, to_call)) = &self.call else {
                    return true;
                };
                // Truncation is what RTP does: sequence numbers wrap at 16 bits, times at 32.
                let header = RtpHeader::new(
                    PCMU,
                    **data.seq_range.start() as u16,
                    data.time.numer() as u32,
                    BROWSER_SSRC,
                );
                if let Ok(packet) = header.to_packet(&data.data)
                    && to_call.send(packet).is_err()
                {
                    self.call = None;
                }
            }
            _ => {}
        }
        true
    }
}
