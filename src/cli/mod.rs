//! The command line: operator commands that set up and inspect the CA.
//!
//! Each command prints a report for a person and exits non-zero when anything is wrong.
//! PINs are never taken from the command line.

mod ca;
mod check_config;
mod hsm;
mod revoke;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::config::{Config, ConfigError};

/// Default configuration path for a packaged install.
const DEFAULT_CONFIG: &str = "/etc/hsm-acme/hsm-acme.toml";

/// An ACME certificate authority whose keys live in a PKCS#11 HSM.
#[derive(Debug, Parser)]
#[command(name = "hsm-acme", version, about)]
pub struct Cli {
    /// Configuration file.
    #[arg(long, short, global = true, env = "HSM_ACME_CONFIG", default_value = DEFAULT_CONFIG)]
    pub config: PathBuf,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Top-level commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Inspect the token and manage keys on it.
    #[command(subcommand)]
    Hsm(HsmCommand),
    /// Set up the CA hierarchy on the token.
    #[command(subcommand)]
    Ca(CaCommand),
    /// Check the configuration file without touching the token.
    CheckConfig,
    /// Revoke a certificate and sign the CA's next CRL (through the running server's admin
    /// socket, or directly with `serve` stopped).
    Revoke {
        /// The serial number in hex, as in the certificate's ACME URL.
        #[arg(long)]
        serial: String,
        /// RFC 5280 reason code: 0 unspecified, 1 keyCompromise, 2 cACompromise,
        /// 3 affiliationChanged, 4 superseded, 5 cessationOfOperation, 9 privilegeWithdrawn.
        #[arg(long, default_value_t = 0)]
        reason: i64,
    },
    /// Sign the next CRL of a CA and write it (PEM) to a file (through the running server's
    /// admin socket, or directly with `serve` stopped).
    Crl {
        /// The CA (its `name` in the configuration).
        #[arg(long)]
        ca: String,
        /// Where to write the CRL.
        #[arg(long)]
        out: PathBuf,
    },
    /// Serve ACME over HTTPS until SIGTERM or SIGINT.
    Serve(ServeArgs),
}

/// `hsm-acme serve` options; each overrides the configuration file.
#[derive(Debug, clap::Args)]
pub struct ServeArgs {
    /// Address to listen on (overrides [server] listen).
    #[arg(long)]
    pub listen: Option<std::net::SocketAddr>,
    /// Port to validate http-01 on (overrides [validation] http01_port).
    #[arg(long)]
    pub http01_port: Option<u16>,
    /// Port to validate tls-alpn-01 on.
    #[arg(long)]
    pub tls_alpn01_port: Option<u16>,
    /// DNS resolver (ip:port) for validation (overrides [validation] dns_resolver).
    #[arg(long)]
    pub dns_resolver: Option<std::net::SocketAddr>,
    /// Address of the plain-HTTP CRL and CA certificate listener (overrides
    /// [publication] listen).
    #[arg(long)]
    pub publication_listen: Option<std::net::SocketAddr>,
}

/// `hsm-acme hsm …`
#[derive(Debug, Subcommand)]
pub enum HsmCommand {
    /// Show the module, the token and its mechanisms (no login needed).
    Info,
    /// Generate keys on the token: one given key, or every configured key that is missing.
    Keygen {
        /// Label of a key to generate (with --type).
        #[arg(long, requires = "key_type")]
        label: Option<String>,
        /// Key type: ecdsa-p256, ecdsa-p384, rsa-2048, rsa-3072, rsa-4096, ed25519, aes-256.
        #[arg(long = "type", requires = "label")]
        key_type: Option<String>,
    },
    /// Check every configured key: attributes, a test signature verified in software.
    Check,
}

/// `hsm-acme ca …`
#[derive(Debug, Subcommand)]
pub enum CaCommand {
    /// Create missing CA keys and certificates (or CSRs for externally certified CAs).
    Init,
    /// Install the certificate an external CA issued for one of our CAs.
    Import {
        /// The CA (its `name` in the configuration).
        #[arg(long)]
        ca: String,
        /// The certificate (PEM).
        #[arg(long)]
        cert: PathBuf,
        /// The issuer's certificates up to the root (PEM), if not configured already.
        #[arg(long)]
        chain: Option<PathBuf>,
    },
}

/// A command failure: the message is for the operator.
#[derive(Debug)]
pub struct CliError(String);

impl<E: std::error::Error> From<E> for CliError {
    fn from(e: E) -> Self {
        Self(e.to_string())
    }
}

impl CliError {
    fn msg(message: impl Into<String>) -> Self {
        Self(message.into())
    }
}

/// Runs a parsed command line and returns the process exit code.
pub fn run(cli: &Cli) -> ExitCode {
    init_tracing();
    let result = match &cli.command {
        Command::CheckConfig => check_config::run(&cli.config),
        Command::Hsm(cmd) => load(&cli.config).and_then(|config| hsm::run(&config, cmd)),
        Command::Ca(cmd) => load(&cli.config).and_then(|config| ca::run(&config, cmd)),
        Command::Serve(args) => load(&cli.config).and_then(|config| serve(config, args)),
        Command::Revoke { serial, reason } => {
            load(&cli.config).and_then(|config| revoke::revoke(&config, serial, *reason))
        }
        Command::Crl { ca, out } => {
            load(&cli.config).and_then(|config| revoke::crl(&config, ca, out))
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(CliError(message)) => {
            eprintln!("error: {message}");
            ExitCode::FAILURE
        }
    }
}

fn serve(config: Config, args: &ServeArgs) -> Result<(), CliError> {
    let overrides = crate::app::ServeOverrides {
        listen: args.listen,
        http01_port: args.http01_port,
        tls_alpn01_port: args.tls_alpn01_port,
        dns_resolver: args.dns_resolver,
        publication_listen: args.publication_listen,
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("hsm-acme")
        .build()?;
    runtime.block_on(crate::app::serve(config, overrides))?;
    Ok(())
}

fn load(path: &std::path::Path) -> Result<Config, CliError> {
    Config::load(path).map_err(|e: ConfigError| CliError(e.to_string()))
}

fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("HSM_ACME_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .try_init();
}
