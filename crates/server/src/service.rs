//! Running genkan as an operating-system service: a systemd unit on Linux, a Windows service on
//! Windows (replacing the seed's winsw wrapper around nginx).
//!
//! What the service looks like is decided here, in plain functions tested on every platform;
//! the platform calls are a thin shell (`windows_shell` below) that only hands these values over.

use std::path::{Path, PathBuf};

/// The name the service is registered under.
pub const SERVICE_NAME: &str = "genkan";
/// Human-readable name.
pub const DISPLAY_NAME: &str = "genkan secure entrance";
/// One-line description for service managers.
pub const DESCRIPTION: &str =
    "genkan: TLS front door, identity and policy, records and contact center for the company";

/// What the unit or service should run.
#[derive(Debug, Clone)]
pub struct ServiceSpec {
    /// Absolute path of the genkan binary.
    pub executable: PathBuf,
    /// Absolute path of the config file, if any.
    pub config: Option<PathBuf>,
    /// Run as this existing user; `None` lets systemd allocate a dynamic one.
    pub user: Option<String>,
    /// Data directory the service may write (everything else is read-only to it).
    pub data_dir: PathBuf,
}

impl ServiceSpec {
    /// Arguments after the executable.
    pub fn arguments(&self) -> Vec<String> {
        let mut args = vec!["serve".to_owned()];
        if let Some(config) = &self.config {
            args.push("--config".into());
            args.push(config.display().to_string());
        }
        args
    }
}

/// A systemd unit with `Type=notify` and a tight sandbox: the service can bind ports 80 and
/// 443 through one capability, write only its data directory, and nothing else.
pub fn systemd_unit(spec: &ServiceSpec) -> String {
    let exec = std::iter::once(spec.executable.display().to_string())
        .chain(spec.arguments())
        .map(|part| systemd_quote(&part))
        .collect::<Vec<_>>()
        .join(" ");
    let identity = match &spec.user {
        Some(user) => format!("User={user}\nGroup={user}\n"),
        None => "DynamicUser=yes\n".to_owned(),
    };
    let data_dir = spec.data_dir.display();
    let state = if spec.data_dir == Path::new("/var/lib/genkan") {
        "StateDirectory=genkan\nStateDirectoryMode=0700\n".to_owned()
    } else {
        format!("ReadWritePaths={data_dir}\n")
    };
    format!(
        "[Unit]\n\
Description={DISPLAY_NAME}\n\
After=network-online.target\n\
Wants=network-online.target\n\
\n\
[Service]\n\
Type=notify\n\
NotifyAccess=main\n\
ExecStart={exec}\n\
ExecReload=/bin/kill -HUP $MAINPID\n\
Restart=on-failure\n\
RestartSec=2s\n\
TimeoutStopSec=45s\n\
Environment=GENKAN_DATA_DIR={data_dir}\n\
{identity}\
{state}\
UMask=0077\n\
LimitNOFILE=65536\n\
AmbientCapabilities=CAP_NET_BIND_SERVICE\n\
CapabilityBoundingSet=CAP_NET_BIND_SERVICE\n\
NoNewPrivileges=yes\n\
ProtectSystem=strict\n\
ProtectHome=yes\n\
PrivateTmp=yes\n\
PrivateDevices=yes\n\
ProtectKernelTunables=yes\n\
ProtectKernelModules=yes\n\
ProtectKernelLogs=yes\n\
ProtectControlGroups=yes\n\
ProtectClock=yes\n\
ProtectHostname=yes\n\
RestrictAddressFamilies=AF_UNIX AF_INET AF_INET6\n\
RestrictNamespaces=yes\n\
RestrictRealtime=yes\n\
RestrictSUIDSGID=yes\n\
LockPersonality=yes\n\
MemoryDenyWriteExecute=yes\n\
SystemCallFilter=@system-service\n\
SystemCallArchitectures=native\n\
\n\
[Install]\n\
WantedBy=multi-user.target\n"
    )
}

/// Quotes one word of `ExecStart=` the way systemd reads it.
fn systemd_quote(word: &str) -> String {
    if !word.is_empty()
        && word
            .bytes()
            .all(|byte| byte.is_ascii_alphanumeric() || b"/._-:=@+,".contains(&byte))
    {
        return word.to_owned();
    }
    let escaped = word
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('%', "%%")
        .replace('$', "$$");
    format!("\"{escaped}\"")
}

/// Writes the systemd unit to `unit_dir/genkan.service` and returns its path.
pub fn install_systemd(spec: &ServiceSpec, unit_dir: &Path) -> anyhow::Result<PathBuf> {
    // systemd splits ReadWritePaths= and Environment= at white space.
    if spec
        .data_dir
        .display()
        .to_string()
        .contains(char::is_whitespace)
    {
        anyhow::bail!(
            "the data directory {} contains white space, which a systemd unit cannot name",
            spec.data_dir.display()
        );
    }
    let path = unit_dir.join(format!("{SERVICE_NAME}.service"));
    crate::datadir::write_atomically(&path, systemd_unit(spec).as_bytes(), 0o644)?;
    Ok(path)
}

#[cfg(windows)]
// SAFETY: `define_windows_service!` expands to the `extern "system"` entry point the service
// manager calls, which reads the argument array Windows passes; no other unsafe code is here.
#[allow(unsafe_code)]
pub mod windows_shell {
    //! Registers and runs genkan under the Windows service manager. Only hands the values of
    //! [`super::ServiceSpec`] to the `windows-service` crate; it has not yet been compiled on
    //! Windows (only Linux can be built where genkan is developed).

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

    use super::{DESCRIPTION, DISPLAY_NAME, SERVICE_NAME, ServiceSpec};

    /// Registers the service to start automatically with Windows.
    pub fn install(spec: &ServiceSpec) -> anyhow::Result<()> {
        let manager = ServiceManager::local_computer(
            None::<&str>,
            ServiceManagerAccess::CONNECT | ServiceManagerAccess::CREATE_SERVICE,
        )?;
        let mut arguments: Vec<OsString> = vec!["service".into(), "run".into()];
        arguments.extend(spec.arguments().into_iter().skip(1).map(OsString::from));
        let info = ServiceInfo {
            name: SERVICE_NAME.into(),
            display_name: DISPLAY_NAME.into(),
            service_type: ServiceType::OWN_PROCESS,
            start_type: ServiceStartType::AutoStart,
            error_control: ServiceErrorControl::Normal,
            executable_path: spec.executable.clone(),
            launch_arguments: arguments,
            dependencies: vec![],
            account_name: None,
            account_password: None,
        };
        let service = manager.create_service(&info, ServiceAccess::CHANGE_CONFIG)?;
        service.set_description(DESCRIPTION)?;
        Ok(())
    }

    // The service manager calls back through a plain function pointer with no user data, so
    // the config path has to wait for it in a static; it is written once, before the dispatcher starts.
    static CONFIG_PATH: OnceLock<Option<PathBuf>> = OnceLock::new();

    windows_service::define_windows_service!(ffi_service_main, service_main);

    /// Hands the process to the service manager; returns when the service has stopped.
    pub fn run(config: Option<PathBuf>) -> anyhow::Result<()> {
        let _ = CONFIG_PATH.set(config);
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
            wait_hint: Duration::from_secs(45),
            process_id: None,
        }
    }

    fn run_service() -> anyhow::Result<()> {
        let (stop, stopped) = std::sync::mpsc::channel::<()>();
        let handle =
            service_control_handler::register(SERVICE_NAME, move |control| match control {
                ServiceControl::Stop | ServiceControl::Shutdown => {
                    let _ = stop.send(());
                    ServiceControlHandlerResult::NoError
                }
                ServiceControl::Interrogate => ServiceControlHandlerResult::NoError,
                _ => ServiceControlHandlerResult::NotImplemented,
            })?;
        let config = match CONFIG_PATH.get().cloned().flatten() {
            Some(path) => crate::config::Config::load(&path)?,
            None => crate::config::Config::embedded_default()?,
        };
        let runtime = tokio::runtime::Runtime::new()?;
        let outcome = runtime.block_on(async {
            let running = crate::start(config).await?;
            handle.set_service_status(status(ServiceState::Running, 0))?;
            let _ = tokio::task::spawn_blocking(move || stopped.recv()).await;
            handle.set_service_status(status(ServiceState::StopPending, 0))?;
            running.shutdown().await;
            anyhow::Ok(())
        });
        handle.set_service_status(status(ServiceState::Stopped, u32::from(outcome.is_err())))?;
        outcome
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unit_is_notify_sandboxed_and_reloads_with_sighup() {
        let spec = ServiceSpec {
            executable: "/usr/local/bin/genkan".into(),
            config: Some("/etc/genkan/genkan.toml".into()),
            user: None,
            data_dir: "/var/lib/genkan".into(),
        };
        let unit = systemd_unit(&spec);
        for line in [
            "Type=notify",
            "ExecStart=/usr/local/bin/genkan serve --config /etc/genkan/genkan.toml",
            "ExecReload=/bin/kill -HUP $MAINPID",
            "DynamicUser=yes",
            "StateDirectory=genkan",
            "CapabilityBoundingSet=CAP_NET_BIND_SERVICE",
            "ProtectSystem=strict",
            "NoNewPrivileges=yes",
            "WantedBy=multi-user.target",
        ] {
            assert!(
                unit.lines().any(|candidate| candidate == line),
                "missing {line}:\n{unit}"
            );
        }
    }

    #[test]
    fn odd_paths_are_quoted_and_named_users_replace_dynamic_ones() {
        let spec = ServiceSpec {
            executable: "/opt/gen kan/genkan".into(),
            config: None,
            user: Some("genkan".into()),
            data_dir: "/srv/genkan".into(),
        };
        let unit = systemd_unit(&spec);
        assert!(
            unit.contains("ExecStart=\"/opt/gen kan/genkan\" serve\n"),
            "{unit}"
        );
        assert!(unit.contains("User=genkan\nGroup=genkan\n"));
        assert!(!unit.contains("DynamicUser"));
        assert!(unit.contains("ReadWritePaths=/srv/genkan\n"));
    }
}
