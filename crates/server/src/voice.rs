//! The voice path: a thin async adapter around the pure `sip` and `media` cores.
//!
//! One task (the switch, `switch.rs`) owns the SIP socket (UDP; TCP connections are framed
//! by `tcp.rs` and their messages passed to it), feeds every message and timer to
//! `sip::Transactions`, keeps the registrar of agents' SIP phones, checks carrier
//! trunks (source allowlist and digest), and acts as a back-to-back user agent (`calls.rs`):
//! a trunk call becomes a voice contact of the contact center; when the center offers it to
//! an agent with a registered phone, genkan calls the phone and bridges the two legs. Each
//! answered call's media runs in a task of its own (`media.rs`) around `media::Bridge`,
//! recording both legs into one stereo WAV (`recording.rs`).
//!
//! The center reaches the switch through `center::runtime::VoiceCommand`s (offer, withdrawn,
//! ended…); the switch reaches the center through its events (`Accept`, `Reject`,
//! `CustomerLeft`, `AgentEnded`) and `CallRecord`s.
//!
//! The flow's say and get-input blocks answer the carrier and play WAV prompts (`prompts.rs`,
//! `calls/announce.rs`); the caller's RFC 4733 keys go back to the center as `Input`.
//! Administrators upload prompts on `/_genkan/admin/prompts` (`prompts/page.rs`); the switch
//! plays an upload from the next prompt on.
//!
//! Re-INVITEs on either leg answer hold and resume (`calls/hold.rs`), muting the held leg in
//! the media.
//!
//! Agents without a SIP phone answer in the browser: `softphone.rs` keeps one WebRTC
//! connection per agent's desk (str0m, one UDP socket for all of them), and an accepted call
//! is bridged to it like a phone leg.
//!
//! Trunks with `[voice.trunk.register]` are registered with their carrier by the switch
//! (`carrier.rs` around `sip::registration`), from the SIP socket.
//!
//! Phones that registered over TCP are called on the connection they registered on, or on a
//! new one to their Contact once it has closed (`calls/reach.rs`).
//!
//! Not yet: SIP over TLS.

mod calls;
mod carrier;
mod media;
mod prompts;
mod recording;
mod registrar;
mod softphone;
mod switch;
mod tcp;

pub use softphone::{OfferRefused, Softphones};

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

use anyhow::{Context, Result};
use tokio::net::{TcpListener, UdpSocket};
use tokio::sync::mpsc::unbounded_channel;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::center::runtime::ContactCenter;
use crate::config::VoiceSettings;

/// A bound SIP listener, ready to run.
pub struct Voice {
    switch: switch::Switch,
    commands: tokio::sync::mpsc::UnboundedReceiver<crate::center::runtime::VoiceCommand>,
    listener: TcpListener,
    /// TCP connections, accepted or dialed, report to the switch here.
    streams: tokio::sync::mpsc::UnboundedSender<tcp::StreamEvent>,
    stream_events: tokio::sync::mpsc::UnboundedReceiver<tcp::StreamEvent>,
    webrtc: softphone::WebRtc,
    webrtc_requests: tokio::sync::mpsc::UnboundedReceiver<softphone::Request>,
    softphones_gone: tokio::sync::mpsc::UnboundedReceiver<softphone::ToSwitch>,
    /// The browser softphones, for the desk.
    pub softphones: Softphones,
    /// Where SIP is received.
    pub sip_addr: SocketAddr,
    /// Where recordings are written (`<data_dir>/recordings`).
    pub recordings: std::path::PathBuf,
    /// The prompts, shared with the admin page that uploads them.
    prompts: Arc<prompts::PromptLibrary>,
}

impl Voice {
    /// Binds the SIP socket, prepares the recordings folder (repairing what a crash left
    /// unfinished) and attaches to the contact center.
    pub async fn bind(
        settings: &VoiceSettings,
        center: Arc<ContactCenter>,
        data_dir: &Path,
    ) -> Result<Self> {
        let socket = UdpSocket::bind(settings.sip_listen)
            .await
            .with_context(|| {
                format!("voice.sip_listen: cannot listen on {}", settings.sip_listen)
            })?;
        let sip_addr = socket.local_addr()?;
        // TCP on the same address and port number.
        let listener = TcpListener::bind(sip_addr)
            .await
            .with_context(|| format!("voice.sip_listen: cannot listen on {sip_addr} (TCP)"))?;
        let (recordings, repaired) = recording::prepare(data_dir)?;
        if repaired > 0 {
            tracing::warn!(
                repaired,
                "recordings left unfinished by a stop were repaired"
            );
        }
        let (softphones, webrtc, webrtc_requests, softphones_gone) =
            softphone::bind(settings.webrtc_listen, settings.public_address).await?;
        let (adapter, commands) = unbounded_channel();
        center.attach_voice(adapter);
        let prompts = prompts::PromptLibrary::load(settings, data_dir);
        let (streams, stream_events) = unbounded_channel();
        let switch = switch::Switch::new(
            settings.clone(),
            socket,
            sip_addr,
            center,
            recordings.clone(),
            Arc::clone(&prompts),
            softphones.clone(),
            streams.clone(),
        )?;
        tracing::info!(%sip_addr, "SIP listening (UDP and TCP)");
        Ok(Self {
            switch,
            commands,
            listener,
            streams,
            stream_events,
            webrtc,
            webrtc_requests,
            softphones_gone,
            softphones,
            sip_addr,
            recordings,
            prompts,
        })
    }

    /// The admin page for the prompts (`/_genkan/admin/prompts`), sharing this switch's
    /// prompts so that an upload is heard on the next call.
    pub fn prompts_page(
        &self,
        auth: Arc<crate::auth::Auth>,
        contact: Arc<crate::config::ContactSettings>,
    ) -> axum::Router {
        prompts::page::router(auth, contact, Arc::clone(&self.prompts))
    }

    /// Runs the switch until shutdown.
    pub fn spawn(self, shutdown: watch::Receiver<bool>) -> JoinHandle<()> {
        tokio::spawn(tcp::accept(self.listener, self.streams));
        tokio::spawn(self.webrtc.run(self.webrtc_requests, shutdown.clone()));
        tokio::spawn(self.switch.run(
            self.commands,
            self.stream_events,
            self.softphones_gone,
            shutdown,
        ))
    }
}

/// Random bytes for tags, branches, Call-IDs, nonces, SSRCs.
fn random<const N: usize>() -> [u8; N] {
    let mut bytes = [0u8; N];
    if getrandom::fill(&mut bytes).is_err() {
        // No OS randomness: the clock's nanoseconds keep identifiers unique, which is what
        // tags and branches need (nonces stay unforgeable through their HMAC).
        let nanos = crate::clock::system_now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |since| since.as_nanos());
        for (byte, source) in bytes.iter_mut().zip(nanos.to_le_bytes().iter().cycle()) {
            *byte = *source;
        }
    }
    bytes
}

/// A random token in hex, for tags, branches and Call-IDs.
fn token() -> String {
    random::<8>()
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect()
}
