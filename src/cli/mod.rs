//! The command line: operator commands that set up and inspect the CA.
//!
//! Each command prints a report for a person and exits non-zero when anything is wrong.
//! PINs are never taken from the command line.

mod admin;
mod ca;
mod check_config;
mod endpoint;
mod hsm;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::config::{Config, ConfigError};
use crate::ops::operator::AdminRequest;

/// Default configuration path for a packaged install.
const DEFAULT_CONFIG: &str = "/etc/hsm-acme/hsm-acme.toml";

/// An ACME certificate authority whose keys live in a PKCS#11 HSM.
#[derive(Debug, Parser)]
#[command(name = "hsm-acme", version, about)]
pub struct Cli {
    /// Configuration file.
    #[arg(long, short, global = true, env = "HSM_ACME_CONFIG", default_value = DEFAULT_CONFIG)]
    pub config: PathBuf,
    /// Answer in JSON, for scripts: the operator commands (revoke, crl, eab, account) their
    /// data, the others `{"ok", "report": [lines], "error"}`.
    #[arg(long, global = true)]
    pub json: bool,
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
    /// External account binding keys (RFC 8555 §7.3.4): who may open an account.
    #[command(subcommand)]
    Eab(EabCommand),
    /// ACME accounts.
    #[command(subcommand)]
    Account(AccountCommand),
    /// The ACME endpoints of the configuration, with their rules.
    #[command(subcommand)]
    Endpoint(EndpointCommand),
    /// Serve ACME over HTTPS until SIGTERM or SIGINT.
    Serve(ServeArgs),
}

/// `hsm-acme eab …`: through the running server's admin socket, or on the state file with
/// `serve` stopped.
#[derive(Debug, Subcommand)]
pub enum EabCommand {
    /// Create a key. An HMAC key is printed once (kid and base64url key) and stored only
    /// sealed by the token; with --public-key, a public key is registered instead.
    Create {
        /// The ACME profile whose accounts it binds (the `[acme] name`, default "default").
        #[arg(long)]
        profile: String,
        /// MAC algorithm of an HMAC key: HS256 (default), HS384, HS512.
        #[arg(long, conflicts_with = "public_key")]
        alg: Option<String>,
        /// A PEM public key or certificate (P-256, P-384, RSA, Ed25519): the client signs
        /// the binding with its private key.
        #[arg(long, value_name = "FILE.pem")]
        public_key: Option<PathBuf>,
        /// Names bound accounts may order, comma-separated: host.example, *.example
        /// (below), .example (it and below), 10.0.0.0/8, 192.0.2.7.
        #[arg(long, value_name = "LIST")]
        allowed_domains: Option<String>,
        /// Names whose authorizations bound accounts get without a challenge (same
        /// patterns); for internal names no public validation can reach.
        #[arg(long, value_name = "LIST")]
        prevalidated_domains: Option<String>,
        /// When it stops binding accounts: a date (2027-06-30), an RFC 3339 time, or a
        /// duration (90d, 12h, 2w).
        #[arg(long, value_name = "DATE|DURATION")]
        expires: Option<String>,
        /// Let it bind any number of accounts (default: one).
        #[arg(long)]
        reusable: bool,
        /// A note for the operator.
        #[arg(long)]
        label: Option<String>,
    },
    /// List keys (never their secrets).
    List,
    /// Show one key and the accounts it bound (never its secret).
    Show {
        /// The key id (it may start with '-').
        #[arg(allow_hyphen_values = true)]
        kid: String,
    },
    /// Revoke a key: it binds no new account, and the accounts it bound can order no more.
    Revoke {
        /// The key id (it may start with '-').
        #[arg(allow_hyphen_values = true)]
        kid: String,
    },
}

/// `hsm-acme account …`: through the running server's admin socket, or on the state file
/// with `serve` stopped.
#[derive(Debug, Subcommand)]
pub enum AccountCommand {
    /// List accounts with their status and EAB key id.
    List,
    /// Show an account, its EAB key id, its orders and its certificates.
    Show {
        /// The account id (the last segment of its URL; it may start with '-').
        #[arg(allow_hyphen_values = true)]
        id: String,
    },
    /// Deactivate an account (RFC 8555 §7.1.6); its authorizations go with it.
    Deactivate {
        /// The account id (it may start with '-').
        #[arg(allow_hyphen_values = true)]
        id: String,
    },
    /// Approve an account that awaits approval (endpoints with approve_accounts).
    Approve {
        /// The account id (it may start with '-').
        #[arg(allow_hyphen_values = true)]
        id: String,
    },
    /// Reject an account that awaits approval; it is deactivated.
    Reject {
        /// The account id (it may start with '-').
        #[arg(allow_hyphen_values = true)]
        id: String,
    },
}

/// `hsm-acme endpoint …`: read from the configuration file.
#[derive(Debug, Subcommand)]
pub enum EndpointCommand {
    /// List the endpoints: name, whether enabled, issuing CA, EAB, directory URL.
    List,
    /// Show one endpoint's settings and certificate profiles.
    Show {
        /// The endpoint's name.
        name: String,
    },
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

/// What a report command (hsm, ca, check-config) prints: line by line for a person, or
/// with `--json` collected and printed once, as `{"ok", "report": [lines], "error"}`.
#[derive(Debug)]
pub struct Report {
    json: bool,
    lines: Vec<String>,
}

impl Report {
    fn new(json: bool) -> Self {
        Self {
            json,
            lines: Vec::new(),
        }
    }

    /// One line of the report.
    fn line(&mut self, text: impl Into<String>) {
        let text = text.into();
        if self.json {
            self.lines.push(text);
        } else {
            println!("{text}");
        }
    }

    /// Prints the collected report with its outcome (`--json` only).
    fn finish(self, error: Option<&str>) {
        if self.json {
            let mut answer = serde_json::json!({"ok": error.is_none(), "report": self.lines});
            if let Some(error) = error {
                answer["error"] = error.into();
            }
            println!("{answer}");
        }
    }
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
    let output = admin::Output { json: cli.json };
    let mut report = Report::new(cli.json);
    let out = &mut report;
    let reported = matches!(
        cli.command,
        Command::CheckConfig | Command::Hsm(_) | Command::Ca(_)
    );
    let result = match &cli.command {
        Command::CheckConfig => check_config::run(out, &cli.config),
        Command::Hsm(cmd) => load(&cli.config).and_then(|config| hsm::run(out, &config, cmd)),
        Command::Ca(cmd) => load(&cli.config).and_then(|config| ca::run(out, &config, cmd)),
        Command::Serve(_) if cli.json => Err(CliError::msg(
            "serve logs to standard error; --json is for the commands that answer",
        )),
        Command::Serve(args) => load(&cli.config).and_then(|config| serve(config, args)),
        Command::Revoke { serial, reason } => {
            let request = AdminRequest::Revoke {
                serial: serial.clone(),
                reason: *reason,
            };
            load(&cli.config).and_then(|config| admin::run(&config, request, output, None))
        }
        Command::Crl { ca, out } => {
            let request = AdminRequest::Crl { ca: ca.clone() };
            load(&cli.config).and_then(|config| admin::run(&config, request, output, Some(out)))
        }
        Command::Eab(cmd) => admin::eab_request(cmd).and_then(|request| {
            load(&cli.config).and_then(|config| admin::run(&config, request, output, None))
        }),
        Command::Account(cmd) => load(&cli.config)
            .and_then(|config| admin::run(&config, admin::account_request(cmd), output, None)),
        Command::Endpoint(cmd) => {
            load(&cli.config).and_then(|config| endpoint::run(&config, cmd, cli.json))
        }
    };
    if reported && cli.json {
        let failed = result.as_ref().err().map(|e| e.0.as_str());
        report.finish(failed);
        return if failed.is_none() {
            ExitCode::SUCCESS
        } else {
            ExitCode::FAILURE
        };
    }
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(CliError(message)) if cli.json => {
            println!("{}", serde_json::json!({"ok": false, "error": message}));
            ExitCode::FAILURE
        }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_that_start_with_a_dash_are_ids_not_options() {
        // Key and account ids are base64url: a quarter of them start with '-' or '_'.
        let cli = Cli::try_parse_from(["hsm-acme", "eab", "show", "-wtPoKoRq", "--json"]).unwrap();
        assert!(cli.json);
        assert!(
            matches!(cli.command, Command::Eab(EabCommand::Show { kid }) if kid == "-wtPoKoRq")
        );
        let cli = Cli::try_parse_from(["hsm-acme", "account", "deactivate", "-x_1"]).unwrap();
        assert!(
            matches!(cli.command, Command::Account(AccountCommand::Deactivate { id }) if id == "-x_1")
        );
        assert!(Cli::try_parse_from(["hsm-acme", "eab", "create"]).is_err());
    }
}
