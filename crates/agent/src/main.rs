//! `genkan-agent`: the endpoint agent. It enrols a device with a one-time code, then reports the
//! device's posture (OS, disk encryption, antivirus, detections, firewall) to genkan over HTTPS
//! with the client certificate the enrolment issued.
//!
//! What it is: a thin shell around the `posture` crate. The collectors run the OS's own tools
//! (`collect/linux.rs`, `collect/macos.rs`, `collect/windows.rs`) and hand their text to
//! posture's parsers; `run.rs` queues each report on disk before sending it, so nothing is lost
//! while the server is unreachable.
//!
//! What it is not: it links none of genkan's server crates, changes nothing on the device and
//! listens on no port.
//!
//! Invariants:
//! - A report is on disk (written atomically) before any attempt to send it, and is removed only
//!   after the server answered 2xx; queued reports are sent oldest first.
//! - The private key never leaves the state directory; key, certificates and state are `0600`
//!   in a `0700` directory.
//! - `clock.rs` is the only module that reads the wall clock.

mod client;
mod clock;
mod collect;
mod enrol;
mod queue;
mod run;
// The service's values are used by the Windows shell only; they are tested everywhere.
#[cfg_attr(not(windows), allow(dead_code))]
mod service;
mod state;

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "genkan-agent",
    version,
    about = "genkan's endpoint agent: reports this device's security posture to genkan"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Enrol this device with a one-time code from genkan's admin pages.
    Enrol {
        /// genkan's address, e.g. https://genkan.example.jp or https://192.168.1.10:8443.
        #[arg(long)]
        server: String,
        /// The one-time enrolment code.
        #[arg(long)]
        code: String,
        /// PEM file of the CA that signed genkan's HTTPS certificate (for a self-signed
        /// genkan); without it the system's trusted CAs are used.
        #[arg(long)]
        ca_file: Option<PathBuf>,
        /// Where the agent keeps its key, certificate and queue.
        #[arg(long)]
        state_dir: Option<PathBuf>,
        /// Replace an existing enrolment.
        #[arg(long)]
        force: bool,
    },
    /// Report now and then every few minutes (what the service runs).
    Run {
        /// Where the agent keeps its key, certificate and queue.
        #[arg(long)]
        state_dir: Option<PathBuf>,
        /// Report once (and send anything queued), then exit; non-zero if reports stay queued.
        #[arg(long)]
        once: bool,
    },
    /// The Windows service: `install` registers it (run as an administrator after `enrol`),
    /// `run` is what the service manager starts. Elsewhere use systemd or launchd.
    Service {
        #[command(subcommand)]
        action: ServiceAction,
    },
    /// Print the report the agent would send, as JSON, without sending it.
    Collect {
        /// Where the agent keeps its state (only to include the device id when enrolled).
        #[arg(long)]
        state_dir: Option<PathBuf>,
    },
}

#[derive(Subcommand)]
enum ServiceAction {
    /// Register the agent as a service that starts with Windows.
    Install {
        /// Where the agent keeps its key, certificate and queue.
        #[arg(long)]
        state_dir: Option<PathBuf>,
    },
    /// Run under the service manager (the service's own command line).
    Run {
        /// Where the agent keeps its key, certificate and queue.
        #[arg(long)]
        state_dir: Option<PathBuf>,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    // Diagnostics go to standard error (the journal under systemd); `collect` prints the
    // report alone on standard output.
    let _ = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("GENKAN_AGENT_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .try_init();
    match run(cli) {
        Ok(code) => code,
        Err(error) => {
            #[allow(clippy::print_stderr)]
            {
                eprintln!("genkan-agent: {error:#}");
            }
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> Result<ExitCode> {
    if let Command::Service { action } = cli.command {
        return service(action);
    }
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    match cli.command {
        Command::Enrol {
            server,
            code,
            ca_file,
            state_dir,
            force,
        } => runtime.block_on(async {
            let state = state::StateDir::new(state_dir.unwrap_or_else(state::default_dir));
            let host = collect::SystemHost;
            let request = enrol::Enrolment {
                server: &server,
                code: &code,
                ca_file: ca_file.as_deref(),
                force,
            };
            let device = enrol::enrol(&state, &host, &request).await?;
            tracing::info!(
                device_id = %device.device_id,
                state_dir = %state.root().display(),
                "enrolled"
            );
            Ok(ExitCode::SUCCESS)
        }),
        Command::Run { state_dir, once } => runtime.block_on(async {
            let state = state::StateDir::new(state_dir.unwrap_or_else(state::default_dir));
            let agent = run::Agent::load(&state)?;
            let host = collect::SystemHost;
            if once {
                let delivery = agent.report_once(&host).await?;
                return Ok(if delivery.remaining == 0 {
                    ExitCode::SUCCESS
                } else {
                    ExitCode::from(2)
                });
            }
            agent.run_forever(&host, run::shutdown_signal()).await?;
            Ok(ExitCode::SUCCESS)
        }),
        // Answered before the runtime starts: the service manager brings its own.
        Command::Service { .. } => Ok(ExitCode::FAILURE),
        Command::Collect { state_dir } => runtime.block_on(async {
            let state = state::StateDir::new(state_dir.unwrap_or_else(state::default_dir));
            let device_id = state.device().ok().map(|device| device.device_id);
            let report = collect::collect(&collect::SystemHost, device_id).await;
            let json = serde_json::to_string_pretty(&report).context("printing the report")?;
            #[allow(clippy::print_stdout)]
            {
                println!("{json}");
            }
            Ok(ExitCode::SUCCESS)
        }),
    }
}

#[cfg(windows)]
fn service(action: ServiceAction) -> Result<ExitCode> {
    match action {
        ServiceAction::Install { state_dir } => {
            let executable = std::env::current_exe().context("finding this executable")?;
            let state_dir = state_dir.unwrap_or_else(state::default_dir);
            service::windows_shell::install(executable, &state_dir)?;
            tracing::info!("service {} registered", service::SERVICE_NAME);
        }
        ServiceAction::Run { state_dir } => {
            service::windows_shell::run(state_dir.unwrap_or_else(state::default_dir))?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

#[cfg(not(windows))]
fn service(_action: ServiceAction) -> Result<ExitCode> {
    anyhow::bail!("{}", service::NOT_WINDOWS)
}

#[cfg(test)]
mod tests;
