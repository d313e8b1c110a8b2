//! Running the agent under the operating system's service manager. On Linux that is systemd with
//! the unit shipped beside the crate (`genkan-agent.service`); on Windows it is the service
//! manager, through the thin shell below.
//!
//! What the Windows service looks like (its name, what it runs) is decided here in plain
//! functions tested on every platform; `windows_shell` only hands those values to the
//! `windows-service` crate. It has not been compiled on Windows: only Linux can be built where
//! genkan is developed (README, "What was tested where").

use std::path::Path;

/// The name the service is registered under.
pub(crate) const SERVICE_NAME: &str = "genkan-agent";
/// Human-readable name.
pub(crate) const DISPLAY_NAME: &str = "genkan endpoint agent";
/// One-line description for the service manager.
pub(crate) const DESCRIPTION: &str =
    "Reports this device's security posture (disk encryption, antivirus, firewall) to genkan";

/// The arguments the service manager starts the executable with: the `service run` entry point
/// (which talks to the service manager) and the state directory, so the service finds the
/// enrolment whatever directory it is started in.
pub(crate) fn service_arguments(state_dir: &Path) -> Vec<String> {
    vec![
        "service".to_owned(),
        "run".to_owned(),
        "--state-dir".to_owned(),
        state_dir.display().to_string(),
    ]
}

/// What `genkan-agent service …` says where there is no Windows service manager.
pub(crate) const NOT_WINDOWS: &str = "`genkan-agent service` registers a Windows service; on Linux install \
crates/agent/genkan-agent.service with systemd (docs/posture.md), on macOS run `genkan-agent run` from a LaunchDaemon";

#[cfg(windows)]
// SAFETY: `define_windows_service!` expands to the `extern "system"` entry point the service
// manager calls, which reads the argument array Windows passes; no other unsafe code is here.
#[allow(unsafe_code)]
pub(crate) mod windows_shell {
    //! Registers and runs the agent under the Windows service manager: the values come from
    //! the functions above, the reporting loop is the same `run::Agent::run_forever` the other
    //! platforms run, stopped by the service manager instead of a signal.

    use std::ffi::OsString;
    use std::path::PathBuf;
    use std::sync::OnceLock;
    use std::time::Duration;

    use windows_service::service::{
        ServiceAccess, ServiceControl, ServiceControlAccept, ServiceErrorControl, ServiceExitCode,
        ServiceInfo, ServiceStartType, ServiceState, ServiceStatus, ServiceType,
    };
    use windows_service::service_control_handler::{self, ServiceControlHandlerResult};
    use windows_service::service_manager::{ServiceManager, ServiceManagerAccess};

    use super::{DESCRIPTION, DISPLAY_NAME, SERVICE_NAME, service_arguments};

    /// Registers the service to start automatically, as LocalSystem (reading BitLocker and
    /// Defender state needs an administrator).
    pub(crate) fn install(executable: PathBuf, state_dir: &std::path::Path) -> anyhow::Result<()> {
        let manager = ServiceManager::local_computer(
            None::<&str>,
            ServiceManagerAccess::CONNECT | ServiceManagerAccess::CREATE_SERVICE,
        )?;
        let info = ServiceInfo {
            name: SERVICE_NAME.into(),
            display_name: DISPLAY_NAME.into(),
            service_type: ServiceType::OWN_PROCESS,
            start_type: ServiceStartType::AutoStart,
            error_control: ServiceErrorControl::Normal,
            executable_path: executable,
            launch_arguments: service_arguments(state_dir)
                .into_iter()
                .map(OsString::from)
                .collect(),
            dependencies: vec![],
            account_name: None,
            account_password: None,
        };
        let service = manager.create_service(&info, ServiceAccess::CHANGE_CONFIG)?;
        service.set_description(DESCRIPTION)?;
        Ok(())
    }

    // The service manager calls back through a plain function pointer with no user data, so
    // the state directory waits in a static, written once before the dispatcher starts.
    static STATE_DIR: OnceLock<PathBuf> = OnceLock::new();

    windows_service::define_windows_service!(ffi_service_main, service_main);

    /// Hands the process to the service manager; returns when the service has stopped.
    pub(crate) fn run(state_dir: PathBuf) -> anyhow::Result<()> {
        let _ = STATE_DIR.set(state_dir);
        windows_service::service_dispatcher::start(SERVICE_NAME, ffi_service_main)?;
        Ok(())
    }

    fn service_main(_arguments: Vec<OsString>) {
        if let Err(error) = run_service() {
            tracing::error!("{error:#}");
        }
    }

    fn status(state: ServiceState, exit: u32) -> ServiceStatus {
        ServiceStatus {
            service_type: ServiceType::OWN_PROCESS,
            current_state: state,
            controls_accepted: if state == ServiceState::Running {
                ServiceControlAccept::STOP | ServiceControlAccept::SHUTDOWN
            } else {
                ServiceControlAccept::empty()
            },
            exit_code: ServiceExitCode::Win32(exit),
            checkpoint: 0,
            wait_hint: Duration::from_secs(30),
            process_id: None,
        }
    }

    fn run_service() -> anyhow::Result<()> {
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let stop = std::sync::Mutex::new(Some(stop));
        let handle =
            service_control_handler::register(SERVICE_NAME, move |control| match control {
                ServiceControl::Stop | ServiceControl::Shutdown => {
                    if let Some(stop) = stop.lock().ok().and_then(|mut stop| stop.take()) {
                        let _ = stop.send(());
                    }
                    ServiceControlHandlerResult::NoError
                }
                ServiceControl::Interrogate => ServiceControlHandlerResult::NoError,
                _ => ServiceControlHandlerResult::NotImplemented,
            })?;
        let state_dir = STATE_DIR
            .get()
            .cloned()
            .unwrap_or_else(crate::state::default_dir);
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        handle.set_service_status(status(ServiceState::Running, 0))?;
        let outcome = runtime.block_on(async {
            let state = crate::state::StateDir::new(state_dir);
            let agent = crate::run::Agent::load(&state)?;
            agent
                .run_forever(&crate::collect::SystemHost, async {
                    let _ = stopped.await;
                })
                .await
        });
        handle.set_service_status(status(ServiceState::Stopped, u32::from(outcome.is_err())))?;
        outcome
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_service_runs_the_service_entry_point_with_its_state_directory() {
        let arguments = service_arguments(Path::new(r"C:\ProgramData\genkan agent"));
        assert_eq!(
            arguments,
            [
                "service",
                "run",
                "--state-dir",
                r"C:\ProgramData\genkan agent"
            ]
        );
        assert_eq!(SERVICE_NAME, "genkan-agent");
        assert!(!DESCRIPTION.is_empty() && !DISPLAY_NAME.is_empty());
    }
}
