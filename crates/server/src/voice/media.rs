//! The media of one answered call: a task that owns the call's two RTP sockets (the carrier
//! leg and the phone leg) and its `media::Bridge`, feeds it every datagram, sends what each
//! 20 ms tick gives each leg, and hands the heard frames to the recording.
//!
//! Port pairs come from `[voice] rtp_ports`; each call takes two consecutive free ports.

use std::net::{IpAddr, SocketAddr};
use std::ops::RangeInclusive;
use std::path::PathBuf;
use std::time::Duration;

use media::{Bridge, LegConfig, LegStats, Side};
use tokio::net::UdpSocket;
use tokio::sync::oneshot;

use super::recording::CallRecording;
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

/// One leg as negotiated: its socket, where its audio goes, and its codec.
pub(crate) struct Leg {
    pub(crate) socket: UdpSocket,
    pub(crate) remote: SocketAddr,
    pub(crate) config: LegConfig,
}

/// What a call's media did, for its record.
#[derive(Debug, Default)]
pub(crate) struct MediaSummary {
    pub(crate) customer: LegStats,
    pub(crate) agent: LegStats,
    /// The recording's file name and length, when the call was recorded.
    pub(crate) recording: Option<(String, Duration)>,
}

/// The running media of a call. Dropping it stops the media too.
pub(crate) struct MediaHandle {
    stop: Option<oneshot::Sender<()>>,
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
}

/// Starts the media task of an answered call. `recording` names the folder and contact when
/// the call is recorded.
pub(crate) fn start(customer: Leg, agent: Leg, recording: Option<(PathBuf, u64)>) -> MediaHandle {
    let (stop, stopped) = oneshot::channel();
    let (finished, done) = oneshot::channel();
    tokio::spawn(async move {
        let summary = run(customer, agent, recording, stopped).await;
        let _ = finished.send(summary);
    });
    MediaHandle {
        stop: Some(stop),
        done,
    }
}

async fn run(
    customer: Leg,
    agent: Leg,
    recording: Option<(PathBuf, u64)>,
    mut stopped: oneshot::Receiver<()>,
) -> MediaSummary {
    let mut bridge = Bridge::new(clock::instant_now());
    bridge.add_leg(Side::Customer, customer.config);
    bridge.add_leg(Side::Agent, agent.config);
    let mut recording = recording.and_then(|(dir, contact)| {
        CallRecording::create(&dir, contact)
            .inspect_err(|error| tracing::error!(contact, "cannot record the call: {error:#}"))
            .ok()
    });
    let mut customer_buffer = vec![0u8; 2048];
    let mut agent_buffer = vec![0u8; 2048];
    loop {
        let tick = tokio::time::Instant::from_std(bridge.next_tick());
        tokio::select! {
            _ = &mut stopped => break,
            received = customer.socket.recv_from(&mut customer_buffer) => {
                if let Ok((len, _)) = received {
                    bridge.receive(Side::Customer, &customer_buffer[..len], clock::instant_now());
                }
            }
            received = agent.socket.recv_from(&mut agent_buffer) => {
                if let Ok((len, _)) = received {
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
                            Side::Customer => &customer,
                            Side::Agent => &agent,
                        };
                        let _ = leg.socket.try_send_to(packet, leg.remote);
                    }
                    if let Some(file) = &mut recording
                        && let Err(error) = file.push(tick.at, &tick.heard)
                    {
                        tracing::error!("recording stopped: {error:#}");
                        recording = None;
                    }
                }
            }
        }
    }
    let recording = recording.and_then(|file| {
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
