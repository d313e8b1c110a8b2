//! `genkan`: the command line. Each subcommand is a few lines that call into the library.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};
use server::config::Config;

#[derive(Parser)]
#[command(
    name = "genkan",
    version,
    about = "genkan: the secure entrance to a small company's apps"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serve HTTPS (and the HTTP redirect). Without --config, the embedded default.
    Serve {
        /// TOML configuration file.
        #[arg(long)]
        config: Option<PathBuf>,
    },
    /// Check a configuration file and name the first bad key.
    CheckConfig {
        /// TOML configuration file.
        file: PathBuf,
    },
    /// Register genkan with the operating system's service manager.
    Service {
        #[command(subcommand)]
        action: ServiceAction,
    },
    /// Manage users (add, passwd, disable, enable, list).
    User {
        #[command(flatten)]
        location: server::accounts_cli::Location,
        #[command(subcommand)]
        action: server::accounts_cli::UserCommand,
    },
    /// Manage groups (add, member, list).
    Group {
        #[command(flatten)]
        location: server::accounts_cli::Location,
        #[command(subcommand)]
        action: server::accounts_cli::GroupCommand,
    },
    /// Print the audit trail as JSON lines.
    Audit {
        #[command(flatten)]
        location: server::accounts_cli::Location,
        /// Events at or after this RFC 3339 time.
        #[arg(long, default_value = "1970-01-01T00:00:00Z")]
        since: String,
    },
    /// Work with access policies.
    Policy {
        #[command(subcommand)]
        action: PolicyAction,
    },
    /// Run SQL on a records database of the running server: a script file (one transaction),
    /// standard input, or an interactive prompt.
    Sql(server::records_cli::SqlArgs),
    /// Add the rows of a CSV file to a table of the running server, all or nothing.
    Import(server::records_cli::ImportArgs),
    /// Write a table of the running server as CSV.
    Export(server::records_cli::ExportArgs),
}

#[derive(Subcommand)]
enum PolicyAction {
    /// Decide one imagined request and explain which rule decided and why.
    /// Prints `allow` or `deny` on the first line.
    Test(server::policy_test::Question),
    /// Remove the rules saved from the admin pages (when they no longer fit the config).
    ClearStored {
        /// Configuration file naming the data directory.
        #[arg(long)]
        config: PathBuf,
    },
}

#[derive(Subcommand)]
enum ServiceAction {
    /// Write a systemd unit (Linux) or register a Windows service.
    Install {
        /// Configuration file the service starts with.
        #[arg(long)]
        config: Option<PathBuf>,
        /// Run as this existing user instead of a dynamic one.
        #[arg(long)]
        user: Option<String>,
        /// Where the unit file goes.
        #[arg(long, default_value = "/etc/systemd/system")]
        unit_dir: PathBuf,
    },
    /// Run under the Windows service manager (what `install` registers; not for people).
    #[command(hide = true)]
    Run {
        /// Configuration file.
        #[arg(long)]
        config: Option<PathBuf>,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            #[allow(clippy::print_stderr)]
            {
                eprintln!("genkan: {error:#}");
            }
            ExitCode::from(server::records_cli::exit_status(&error))
        }
    }
}

#[allow(clippy::print_stdout)]
fn run(cli: Cli) -> Result<()> {
    match cli.command {
        Command::Serve { config } => {
            let config = match &config {
                Some(path) => Config::load(path)?,
                None => Config::embedded_default()?,
            };
            server::telemetry::init(config.log_format, &config.log_level);
            let runtime =
                tokio::runtime::Runtime::new().context("cannot start the async runtime")?;
            runtime.block_on(async {
                let mut running = server::start(config).await?;
                println!("genkan is serving https://localhost:{}/", running.https_addr.port());
                if let Some(http) = running.http_addr {
                    println!("  plain HTTP on {http} redirects to HTTPS");
                }
                println!("  data directory: {}", running.data_dir.display());
                if let Some(password) = running.take_initial_admin_password() {
                    println!("  first administrator: admin");
                    println!("  one-time password:   {password}");
                    println!("  (shown only now; it must be changed at first sign-in)");
                }
                if running.made_self_signed {
                    println!("  made a self-signed certificate in {}/tls (browsers will warn until you configure a real one)", running.data_dir.display());
                }
                running.serve_until_signalled().await
            })
        }
        Command::CheckConfig { file } => {
            let config = Config::load(&file)?;
            println!(
                "{}: ok ({} route{}, https on {})",
                file.display(),
                config.gateway.routes.len(),
                if config.gateway.routes.len() == 1 {
                    ""
                } else {
                    "s"
                },
                config.listen_https
            );
            Ok(())
        }
        Command::Service {
            action:
                ServiceAction::Install {
                    config,
                    user,
                    unit_dir,
                },
        } => {
            let config_path = config.map(|path| std::path::absolute(&path)).transpose()?;
            let loaded = match &config_path {
                Some(path) => Config::load(path)?,
                None => Config::embedded_default()?,
            };
            let spec = server::service::ServiceSpec {
                executable: std::env::current_exe().context("cannot find the genkan binary")?,
                config: config_path,
                user,
                data_dir: if loaded.source.is_some() {
                    std::path::absolute(&loaded.data_dir)?
                } else {
                    PathBuf::from("/var/lib/genkan")
                },
            };
            install(&spec, &unit_dir)
        }
        Command::Service {
            action: ServiceAction::Run { config },
        } => run_as_service(config),
        Command::User { location, action } => {
            print!("{}", server::accounts_cli::user(&location, &action)?);
            Ok(())
        }
        Command::Group { location, action } => {
            print!("{}", server::accounts_cli::group(&location, &action)?);
            Ok(())
        }
        Command::Sql(args) => server::records_cli::sql(&args),
        Command::Import(args) => server::records_cli::import(&args),
        Command::Export(args) => server::records_cli::export(&args),
        Command::Audit { location, since } => {
            print!("{}", server::accounts_cli::audit_export(&location, &since)?);
            Ok(())
        }
        Command::Policy {
            action: PolicyAction::Test(question),
        } => {
            print!("{}", server::policy_test::answer(&question)?);
            Ok(())
        }
        Command::Policy {
            action: PolicyAction::ClearStored { config },
        } => {
            print!("{}", server::policy_test::clear_stored(&config)?);
            Ok(())
        }
    }
}

#[cfg(windows)]
fn run_as_service(config: Option<PathBuf>) -> Result<()> {
    server::service::windows_shell::run(config)
}

#[cfg(not(windows))]
fn run_as_service(_config: Option<PathBuf>) -> Result<()> {
    anyhow::bail!(
        "`genkan service run` is for the Windows service manager; on Linux systemd runs `genkan serve`"
    )
}

#[cfg(not(windows))]
#[allow(clippy::print_stdout)]
fn install(spec: &server::service::ServiceSpec, unit_dir: &std::path::Path) -> Result<()> {
    let path = server::service::install_systemd(spec, unit_dir)?;
    println!("wrote {}", path.display());
    println!("next: systemctl daemon-reload && systemctl enable --now genkan");
    Ok(())
}

#[cfg(windows)]
#[allow(clippy::print_stdout)]
fn install(spec: &server::service::ServiceSpec, _unit_dir: &std::path::Path) -> Result<()> {
    server::service::windows_shell::install(spec)?;
    println!("registered the Windows service `genkan`; start it with: sc start genkan");
    Ok(())
}
