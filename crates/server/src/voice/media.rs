//! The media of one answered call: a task that owns the call's two RTP sockets (the carrier
//! leg and the phone leg) and its `media::Bridge`, feeds it every datagram, sends what each
//! 20 ms tick gives each leg, and hands the heard frames to the recording. The task starts
//! when the carrier leg is answered (the flow's first prompt, or the agent's answer); the
//! phone leg joins when the agent's phone answers, and the recording starts then.
//!
//! Port pairs come from `[voice] rtp_ports`; each call takes two consecutive free ports.
//!
//! The media tasks and their sockets live on a runtime of their own (`media_runtime`), not
//! on the one that runs the SIP switch, the contact center and HTTP: a call's media wakes
//! 150 times a second, and with hundreds of calls those wake-ups queued every INVITE and
//! every routing decision behind them (setup p99 of 176 ms at 700 calls,
//! docs/performance.md). On threads of their own, the kernel's scheduler, not a run queue
//! shared with media, decides when signalling runs.

use std::net::{IpAddr, SocketAddr};
use std::ops::RangeInclusive;
use std::path::PathBuf;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use contact::{ContactId, Event};
use media::{Bridge, Digit, FRAME_SAMPLES, LegConfig, LegStats, Side};
use tokio::net::UdpSocket;
use tokio::sync::mpsc::{UnboundedReceiver, UnboundedSender, unbounded_channel};
use tokio::sync::oneshot;

use super::recording::CallRecording;
use super::softphone::BrowserLeg;
use crate::center::runtime::ContactCenter;
use crate::clock;

/// Hands out RTP sockets from the configured range, round robin.
pub(crate) struct RtpPorts {
    bind: IpAddr,
    range: RangeInclusive<u16>,
    next: u16,
}

impl RtpPorts {
    pub(crate) fn new(bind: IpAddr, range: RangeInclusive<u16>) -> Self {
        let next = *range.start();
        Self { bind, range, next }
    }

    /// Two free sockets (carrier leg, phone leg), or `None` when the range is used up.
    pub(crate) fn pair(&mut self) -> Option<(UdpSocket, UdpSocket)> {
        let first = self.socket()?;
        let second = self.socket()?;
        Some((first, second))
    }

    fn socket(&mut self) -> Option<UdpSocket> {
        // Registered with the media runtime's reactor, where the call's media task reads it.
        let runtime = media_runtime();
        let _inside = runtime.enter();
        let size = usize::from(self.range.end() - self.range.start()) + 1;
        for _ in 0..size {
            let port = self.next;
            self.next = if port >= *self.range.end() {
                *self.range.start()
            } else {
                port + 1
            };
            let Ok(socket) = std::net::UdpSocket::bind(SocketAddr::new(self.bind, port)) else {
                continue;
            };
            if socket.set_nonblocking(true).is_err() {
                continue;
            }
            if let Ok(socket) = UdpSocket::from_std(socket) {
                return Some(socket);
            }
        }
        None
    }
}

/// The runtime every call's media task runs on: as many workers as cores, built at the
/// first call and kept for the life of the process (a runtime cannot be dropped from async
/// code). Should the OS refuse its threads, media runs on the caller's runtime instead.
fn media_runtime() -> tokio::runtime::Handle {
    static MEDIA: OnceLock<Option<tokio::runtime::Runtime>> = OnceLock::new();
    let runtime = MEDIA.get_or_init(|| {
        let workers = std::thread::available_parallelism().map_or(2, usize::from);
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(workers)
            .thread_name("genkan-media")
            .enable_all()
            .build()
            .inspect_err(|error| {
                tracing::error!(%error, "no media threads: media shares the main runtime");
            })
            .ok()
    });
    match runtime {
        Some(runtime) => runtime.handle().clone(),
        None => tokio::runtime::Handle::current(),
    }
}

/// One leg as negotiated: how its packets travel, and its codec.
pub(crate) struct Leg {
    pub(crate) wire: Wire,
    pub(crate) config: LegConfig,
}

impl Leg {
    /// A plain RTP leg: its own socket, and where its audio goes.
    pub(crate) fn udp(socket: UdpSocket, remote: SocketAddr, config: LegConfig) -> Self {
        Self {
            wire: Wire::Udp { socket, remote },
            config,
        }
    }
}

/// How a leg's RTP packets come and go.
pub(crate) enum Wire {
    /// A SIP leg: plain RTP on a socket of its own.
    Udp {
        socket: UdpSocket,
        remote: SocketAddr,
    },
    /// A browser softphone: the WebRTC task decrypts and encrypts, and passes plain RTP.
    Browser(BrowserLeg),
}

impl Wire {
    /// The next datagram into `buffer`; `None` once the leg can bring nothing more (the
    /// softphone went away), after which it never resolves again.
    async fn receive(&mut self, buffer: &mut [u8]) -> Option<usize> {
        match self {
            Self::Udp { socket, .. } => loop {
                // A UDP receive error is an ICMP echo of an earlier send: try again.
                if let Ok((len, _)) = socket.recv_from(buffer).await {
                    return Some(len);
                }
            },
            Self::Browser(leg) => match leg.incoming.recv().await {
                Some(packet) => {
                    let len = packet.len().min(buffer.len());
                    buffer[..len].copy_from_slice(&packet[..len]);
                    Some(len)
                }
                None => std::future::pending().await,
            },
        }
    }

    fn send(&self, packet: &[u8]) {
        match self {
            Self::Udp { socket, remote } => {
                let _ = socket.try_send_to(packet, *remote);
            }
            Self::Browser(leg) => leg.send(packet.to_vec()),
        }
    }
}

/// What a call's media did, for its record.
#[derive(Debug, Default)]
pub(crate) struct MediaSummary {
    pub(crate) customer: LegStats,
    pub(crate) agent: LegStats,
    /// The recording's file name and length, when the call was recorded.
    pub(crate) recording: Option<(String, Duration)>,
}

/// What the switch asks of a running media task.
enum Control {
    /// Queue prompt frames (in the customer leg's codec) for the caller.
    Play(Vec<[u8; FRAME_SAMPLES]>),
    /// Drop whatever prompt is still queued.
    StopPrompt,
    /// The agent's phone answered: bridge it, and record from now on when asked to.
    Agent(Leg, Option<(PathBuf, u64)>),
    /// A re-INVITE put a leg on hold (`true`) or took it off.
    Hold(Side, bool),
}

/// The running media of a call. Dropping it stops the media too.
pub(crate) struct MediaHandle {
    stop: Option<oneshot::Sender<()>>,
    control: UnboundedSender<Control>,
    done: oneshot::Receiver<MediaSummary>,
}

impl MediaHandle {
    /// Stops the media and finishes the recording; the summary arrives on the receiver.
    pub(crate) fn stop(mut self) -> oneshot::Receiver<MediaSummary> {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        self.done
    }

    /// Plays a prompt to the caller after whatever is queued.
    pub(crate) fn play(&self, frames: Vec<[u8; FRAME_SAMPLES]>) {
        let _ = self.control.send(Control::Play(frames));
    }

    /// Cuts the caller's prompt short.
    pub(crate) fn stop_prompt(&self) {
        let _ = self.control.send(Control::StopPrompt);
    }

    /// Puts a leg on hold (it is sent silence, and neither the other leg nor the recording
    /// hears it) or takes it off.
    pub(crate) fn hold(&self, side: Side, held: bool) {
        let _ = self.control.send(Control::Hold(side, held));
    }

    /// Bridges the agent's leg in (the caller's prompt stops).
    pub(crate) fn connect_agent(&self, agent: Leg, recording: Option<(PathBuf, u64)>) {
        let _ = self.control.send(Control::Agent(agent, recording));
    }
}

/// Starts the media task of an answered carrier leg. Until an agent's leg is bridged in,
/// the caller hears prompts (or silence) and their keys go to the center as `Input`.
pub(crate) fn start(customer: Leg, contact: ContactId, center: Arc<ContactCenter>) -> MediaHandle {
    let (stop, stopped) = oneshot::channel();
    let (finished, done) = oneshot::channel();
    let (control, controls) = unbounded_channel();
    media_runtime().spawn(async move {
        let summary = run(customer, contact, center, controls, stopped).await;
        let _ = finished.send(summary);
    });
    MediaHandle {
        stop: Some(stop),
        control,
        done,
    }
}

async fn run(
    customer: Leg,
    contact: ContactId,
    center: Arc<ContactCenter>,
    mut controls: UnboundedReceiver<Control>,
    mut stopped: oneshot::Receiver<()>,
) -> MediaSummary {
    let mut customer = customer;
    let started = clock::instant_now();
    let mut bridge = Bridge::new(started);
    bridge.add_leg(Side::Customer, customer.config);
    let mut agent: Option<Leg> = None;
    let mut recording: Option<(CallRecording, Duration)> = None;
    let mut customer_buffer = vec![0u8; 2048];
    let mut agent_buffer = vec![0u8; 2048];
    // A key pressed while no agent is on the line answers the flow's question; once the
    // agent is bridged, keys are the conversation's business, not the flow's.
    let key = |bridge: &mut Bridge, agent: &Option<Leg>, digit: Digit| {
        bridge.stop_prompt(Side::Customer);
        if agent.is_none() {
            tracing::debug!(%contact, "caller pressed a key");
            center.event(Event::Input {
                contact,
                value: digit.key.to_string(),
            });
        }
    };
    loop {
        let tick = tokio::time::Instant::from_std(bridge.next_tick());
        let agent_received = async {
            match &mut agent {
                Some(leg) => leg.wire.receive(&mut agent_buffer).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            _ = &mut stopped => break,
            Some(control) = controls.recv() => match control {
                Control::Play(frames) => bridge.play(Side::Customer, frames),
                Control::StopPrompt => bridge.stop_prompt(Side::Customer),
                Control::Hold(side, held) => bridge.set_hold(side, held),
                Control::Agent(leg, record) => {
                    bridge.stop_prompt(Side::Customer);
                    bridge.add_leg(Side::Agent, leg.config);
                    agent = Some(leg);
                    // The recording starts with the conversation, at the next tick's slot.
                    let offset = bridge.next_tick().saturating_duration_since(started);
                    recording = record.and_then(|(dir, contact)| {
                        CallRecording::create(&dir, contact)
                            .inspect_err(|error| {
                                tracing::error!(contact, "cannot record the call: {error:#}");
                            })
                            .ok()
                    })
                    .map(|file| (file, offset));
                }
            },
            received = customer.wire.receive(&mut customer_buffer) => {
                if let Some(len) = received
                    && let Some(digit) =
                        bridge.receive(Side::Customer, &customer_buffer[..len], clock::instant_now())
                {
                    key(&mut bridge, &agent, digit);
                }
            }
            received = agent_received => {
                if let Some(len) = received {
                    bridge.receive(Side::Agent, &agent_buffer[..len], clock::instant_now());
                }
            }
            () = tokio::time::sleep_until(tick) => {
                let now = clock::instant_now();
                // Several ticks when the task fell behind, so the streams keep their clock.
                while bridge.next_tick() <= now {
                    let tick = bridge.tick(now);
                    for (side, packet) in &tick.send {
                        let leg = match side {
                            Side::Customer => Some(&customer),
                            Side::Agent => agent.as_ref(),
                        };
                        if let Some(leg) = leg {
                            leg.wire.send(packet);
                        }
                    }
                    for (side, digit) in tick.digits {
                        if side == Side::Customer {
                            key(&mut bridge, &agent, digit);
                        }
                    }
                    if let Some((file, offset)) = &mut recording
                        && let Err(error) = file.push(tick.at.saturating_sub(*offset), &tick.heard)
                    {
                        tracing::error!("recording stopped: {error:#}");
                        recording = None;
                    }
                }
            }
        }
    }
    let recording = recording.and_then(|(file, _)| {
        file.finish()
            .inspect_err(|error| tracing::error!("cannot finish a recording: {error:#}"))
            .ok()
    });
    MediaSummary {
        customer: bridge.stats(Side::Customer).unwrap_or_default(),
        agent: bridge.stats(Side::Agent).unwrap_or_default(),
        recording,
    }
}
