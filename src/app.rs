//! Composition root: configuration → token, store, policy, VA, CA, RA, front end; serve
//! until SIGTERM/SIGINT, then drain.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;
use x509_cert::Certificate;

use crate::acme::DirectoryMeta;
use crate::ca::issuer::{Issuer, IssuerSettings};
use crate::clock::{Clock, SystemClock};
use crate::config::{AcmeConfig, CaIssuer, Config, ServerConfig};
use crate::hsm::{HsmRunner, Pkcs11Token, Sealer, Signer};
use crate::ops::operator::{CrlSigning, Operator};
use crate::policy::Policy;
use crate::policy::suffix::SuffixList;
use crate::publish::{CrlAuthority, Publisher};
use crate::ra::{Ra, RaParts, RaSettings};
use crate::store::Store;
use crate::va::{Va, VaConfig, resolver::DnsResolver};
use crate::wfe::client_auth::{ClientCas, ServerClientVerifier};
use crate::wfe::endpoints::Routes;
use crate::wfe::server_cert::{ServerCertificate, ServerCertificateSettings};
use crate::wfe::{Endpoints, Urls, Wfe, WfeSettings, publication, server, tls};

/// Command-line overrides of the configuration, for tests and tools.
#[derive(Debug, Clone, Default)]
pub struct ServeOverrides {
    /// Listen address.
    pub listen: Option<SocketAddr>,
    /// http-01 validation port.
    pub http01_port: Option<u16>,
    /// tls-alpn-01 validation port.
    pub tls_alpn01_port: Option<u16>,
    /// DNS resolver for validation.
    pub dns_resolver: Option<SocketAddr>,
    /// Publication listener address.
    pub publication_listen: Option<SocketAddr>,
}

/// A failure to start.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct StartError(String);

fn fail(context: &str) -> impl Fn(String) -> StartError + '_ {
    move |e| StartError(format!("{context}: {e}"))
}

/// Starts the server and runs until a termination signal.
pub async fn serve(config: Config, overrides: ServeOverrides) -> Result<(), StartError> {
    let mut server = config
        .server
        .clone()
        .ok_or_else(|| StartError("the configuration has no [server] section".into()))?;
    if let Some(listen) = overrides.listen {
        server.listen = listen;
    }
    let acme = config
        .acme
        .clone()
        .ok_or_else(|| StartError("the configuration has no [acme] section".into()))?;
    let mut validation = config.validation.clone();
    if let Some(port) = overrides.http01_port {
        validation.http01_port = port;
    }
    if overrides.dns_resolver.is_some() {
        validation.dns_resolver = overrides.dns_resolver;
    }
    if let Some(port) = overrides.tls_alpn01_port {
        validation.tls_alpn01_port = port;
    }
    let mut publication = config.publication.clone();
    if let (Some(publication), Some(listen)) = (publication.as_mut(), overrides.publication_listen)
    {
        publication.listen = Some(listen);
    }

    let settings = config.token.clone();
    let token = tokio::task::spawn_blocking(move || Pkcs11Token::open(&settings))
        .await
        .map_err(|e| StartError(e.to_string()))?
        .map_err(|e| StartError(e.to_string()))?;
    let issuer = Arc::new(load_issuer(&config, &token, &acme)?);
    let storage = config
        .storage_path
        .clone()
        .ok_or_else(|| StartError("the configuration has no [storage] path".into()))?;
    let store = Store::open(&storage).map_err(|e| StartError(e.to_string()))?;
    let publication_store = store.clone();
    let admin_store = store.clone();

    let va_config = VaConfig {
        caa_identities: acme.caa_identities.clone(),
        http01_port: validation.http01_port,
        tls_alpn01_port: validation.tls_alpn01_port,
        redirect_ports: validation.redirect_ports.clone(),
        network: validation.network.clone(),
        ..VaConfig::default()
    };
    let resolver = DnsResolver::with_dnssec(validation.dns_resolver, &validation.dnssec)
        .map_err(|e| StartError(format!("DNS resolver: {e}")))?;
    let resolver: Arc<dyn crate::va::resolver::Resolver> = Arc::new(resolver);
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    // Token sessions are shared: handshakes get a quarter (at least one), issuance and CRLs
    // the rest, so neither can starve the other (DESIGN.md principle 5).
    let capacity = token.session_capacity();
    let tls_share = (capacity / 4).max(1);
    let runner = HsmRunner::new(capacity.saturating_sub(tls_share).max(1));
    let (revocations, revoked_cas) = tokio::sync::mpsc::unbounded_channel();
    let sealer: Option<Arc<dyn Sealer>> = match &config.sealing_key {
        Some(label) => {
            let sealer = token
                .sealer(label)
                .map_err(|e| StartError(format!("sealing key {label:?}: {e}")))?;
            Some(Arc::new(sealer))
        }
        None => None,
    };
    let suffixes = match &config.public_suffix_list {
        Some(path) => SuffixList::load(path),
        None => SuffixList::system(),
    }
    .map_err(StartError)?;
    if config.rate_limits.certificates_per_domain.is_some() {
        match suffixes.source() {
            Some(path) => {
                let list = path.display();
                tracing::info!(%list, "registered domains by the public suffix list");
            }
            None => tracing::warn!(
                "no public suffix list installed; registered domains are the last two labels"
            ),
        }
    }
    let base_url = server.base_url();
    // The endpoint names the admin socket accepts (for `eab create --profile`); a reload
    // updates them.
    let endpoint_names = Arc::new(std::sync::RwLock::new(endpoint_names_of(&config)));
    // The text the configuration was loaded from, for `check-config` to compare with.
    let running_text = Arc::new(std::sync::RwLock::new(
        std::fs::read_to_string(&config.path).unwrap_or_default(),
    ));
    let shared = Arc::new(EndpointShared {
        store,
        va_config,
        resolver,
        validation: validation.clone(),
        runner: runner.clone(),
        clock: Arc::clone(&clock),
        revocations,
        sealer: sealer.clone(),
        suffixes: Arc::new(suffixes),
        network: validation.network.clone(),
        body_timeout: server.limits.idle_timeout,
        nonces: crate::wfe::shared_nonces(),
        base_url: base_url.clone(),
    });
    let (ra, routes) = shared.routes(&config, &token)?;
    let endpoints = Endpoints::new(routes);
    ra.recover()
        .await
        .map_err(|e| StartError(format!("recovery: {e}")))?;
    let pruning_ra = ra.clone();

    // mTLS: the verifier rustls holds delegates to the endpoints' CAs, which a reload replaces.
    let client_verifiers = Arc::new(ServerClientVerifier::default());
    client_verifiers.set(client_verifier(&config)?);
    let (tls_config, server_certificate) = server_tls(
        &server,
        &token,
        &issuer,
        Duration::from_secs(u64::from(acme.validity_days) * 86_400),
        tls::TlsBudget::new(tls_share),
        Some(Arc::clone(&client_verifiers) as Arc<dyn rustls::server::danger::ClientCertVerifier>),
    )?;
    let admin_reader = ra.reader().clone();
    let listener = tokio::net::TcpListener::bind(server.listen)
        .await
        .map_err(|e| StartError(format!("listening on {}: {e}", server.listen)))?;

    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let stopped = move || {
        let mut rx = stop_rx.clone();
        async move {
            let _ = rx.wait_for(|stop| *stop).await;
        }
    };
    let mut publisher_handle = None;
    if let Some(publication) = &publication {
        let authorities = crl_authorities(&config, &token, &issuer);
        let publisher = Publisher::new(
            authorities,
            publication_store,
            runner.clone(),
            Arc::clone(&clock),
            publication.crl_lifetime,
        )
        .map_err(|e| StartError(format!("publication: {}", e.detail)))?;
        // Signed afresh at every start: a revocation committed just before a crash (kill -9
        // inside the debounce) is then on the CRL without waiting for the schedule.
        publisher
            .refresh_all(true)
            .await
            .map_err(|e| StartError(format!("signing the CRLs: {}", e.detail)))?;
        tokio::spawn(Arc::clone(&publisher).run(revoked_cas, stopped()));
        if let Some(listen) = publication.listen {
            let plain = tokio::net::TcpListener::bind(listen)
                .await
                .map_err(|e| StartError(format!("listening on {listen}: {e}")))?;
            tracing::info!(%listen, base_url = %publication.base_url, "publishing CRLs and CA certificates");
            tokio::spawn(publication::serve(plain, Arc::clone(&publisher), stopped()));
        }
        publisher_handle = Some(publisher);
    }
    if let Some(path) = server.admin_socket.clone() {
        // Bound before serving starts: a path that is not ours to take stops the start.
        let listener =
            crate::ops::admin::bind(&path).map_err(|e| StartError(format!("admin socket: {e}")))?;
        let crls = publisher_handle.map(|publisher| {
            Arc::new(PublisherCrls {
                publisher,
                runtime: tokio::runtime::Handle::current(),
            }) as Arc<dyn CrlSigning>
        });
        let operator = Arc::new(Operator {
            store: admin_store,
            profiles: Arc::clone(&endpoint_names),
            account_url_prefix: Urls::new(&base_url).account_prefix(),
            sealer,
            crls,
            clock: Arc::clone(&clock),
            running_config: Some(Arc::clone(&running_text)),
        });
        let shutdown = stopped();
        tokio::spawn(async move {
            crate::ops::admin::serve(listener, &path, operator, shutdown).await;
        });
    }

    tracing::info!(listen = %server.listen, directory = %format!("{base_url}/directory"),
        http01_port = validation.http01_port, "serving ACME");
    eprintln!("hsm-acme: serving ACME at {base_url}/directory");
    tokio::spawn(async move {
        shutdown_signal().await;
        // systemd: draining has begun (sd_notify(3)); a no-op outside a notify service.
        let _ = sd_notify::notify(false, &[sd_notify::NotifyState::Stopping]);
        let _ = stop_tx.send(true);
    });
    // Every listener is bound, the CRLs are signed and recovery has run: Type=notify units
    // are now reported started, so units ordered after hsm-acme find it answering.
    let status = format!("serving ACME at {base_url}/directory");
    if let Err(e) = sd_notify::notify(
        false,
        &[
            sd_notify::NotifyState::Ready,
            sd_notify::NotifyState::Status(&status),
        ],
    ) {
        tracing::warn!(error = %e, "could not tell systemd that the service is ready");
    }
    tokio::spawn(prune_periodically(pruning_ra, stopped()));
    #[cfg(unix)]
    tokio::spawn(reload_on_hangup(
        Reload {
            shared,
            token: token.clone(),
            endpoints: Arc::clone(&endpoints),
            running: config.clone(),
            running_text: Arc::clone(&running_text),
            endpoint_names: Arc::clone(&endpoint_names),
            client_verifiers: Arc::clone(&client_verifiers),
        },
        stopped(),
    ));
    if let Some(certificate) = server_certificate {
        tokio::spawn(certificate.keep_fresh(stopped()));
    }
    if let Some(every) = token.keepalive_interval() {
        tokio::spawn(keep_sessions_alive(
            token.clone(),
            runner.clone(),
            every,
            stopped(),
        ));
    }
    if let Some(interval) = watchdog_interval() {
        tokio::spawn(watchdog(interval, admin_reader));
    }
    server::serve(listener, tls_config, endpoints, server.limits, stopped()).await;
    Ok(())
}

/// The running server's CRL signing for operator commands: through the publisher, so the
/// new CRL is served at once.
#[derive(Debug)]
struct PublisherCrls {
    publisher: Arc<Publisher>,
    runtime: tokio::runtime::Handle,
}

impl CrlSigning for PublisherCrls {
    fn resign(&self, ca: &str) -> Result<crate::store::CrlRecord, crate::error::Error> {
        // Called on a blocking thread (the operator's commands block).
        self.runtime.block_on(self.publisher.resign(ca))
    }
}

/// Touches the token's idle sessions every `every` (the profile's `keepalive_secs`), on the
/// issuance budget so it never competes with more than one signature's worth of work.
async fn keep_sessions_alive(
    token: Pkcs11Token,
    runner: HsmRunner,
    every: Duration,
    shutdown: impl Future<Output = ()>,
) {
    tokio::pin!(shutdown);
    let mut ticks = tokio::time::interval(every);
    ticks.tick().await;
    loop {
        tokio::select! {
            _ = ticks.tick() => {}
            () = &mut shutdown => return,
        }
        let token = token.clone();
        match runner.run(move || token.keepalive()).await {
            Ok(0) => {}
            Ok(dropped) => tracing::info!(dropped, "keep-alive dropped lost token sessions"),
            Err(e) => tracing::warn!(error = %e, "token keep-alive failed"),
        }
    }
}

/// How often long-expired orders and authorizations are cleared away.
const PRUNE_EVERY: Duration = Duration::from_secs(900);

/// Clears long-expired records in the background, in small transactions, until shutdown.
async fn prune_periodically(ra: Ra, shutdown: impl Future<Output = ()>) {
    tokio::pin!(shutdown);
    let mut ticks = tokio::time::interval(PRUNE_EVERY);
    loop {
        tokio::select! {
            _ = ticks.tick() => {}
            () = &mut shutdown => return,
        }
        match ra.prune().await {
            Ok((0, 0)) => {}
            Ok((orders, authzs)) => {
                tracing::info!(
                    orders,
                    authzs,
                    "removed long-expired orders and authorizations"
                );
            }
            Err(e) => tracing::warn!(error = %e, "pruning expired records failed"),
        }
    }
}

/// Half the systemd watchdog timeout (`WatchdogSec=`), if the unit sets one for us.
fn watchdog_interval() -> Option<Duration> {
    let usec: u64 = std::env::var("WATCHDOG_USEC").ok()?.parse().ok()?;
    // systemd names the process the watchdog is meant for; another (a child) ignores it.
    if let Ok(pid) = std::env::var("WATCHDOG_PID")
        && pid.parse::<u32>().ok() != Some(std::process::id())
    {
        return None;
    }
    (usec > 0).then(|| Duration::from_micros(usec / 2))
}

/// Tells systemd the service is alive while the reactor turns and a store read completes
/// on the blocking pool: a wedged runtime or an exhausted pool stops the pings, and
/// systemd restarts the service.
async fn watchdog(interval: Duration, reader: crate::store::StoreReader) {
    let mut ticks = tokio::time::interval(interval);
    loop {
        ticks.tick().await;
        let probe = reader.clone();
        let alive = tokio::task::spawn_blocking(move || probe.account_by_key("-").is_ok())
            .await
            .unwrap_or(false);
        if alive {
            let _ = sd_notify::notify(false, &[sd_notify::NotifyState::Watchdog]);
        } else {
            tracing::error!("the state file does not answer; withholding the watchdog ping");
        }
    }
}

/// Every configured CA whose key is on the token and whose certificate exists: the ACME
/// issuing CA and the CAs above it that hsm-acme runs (a root kept offline is skipped).
fn crl_authorities(config: &Config, token: &Pkcs11Token, issuer: &Issuer) -> Vec<CrlAuthority> {
    let mut out = vec![CrlAuthority {
        name: issuer.name().to_owned(),
        certificate: issuer.certificate().clone(),
        signer: Arc::clone(issuer.signer()),
    }];
    for ca in config.cas.iter().filter(|c| c.name != issuer.name()) {
        let certificate = match read_pem_certificate(&ca.certificate) {
            Ok(cert) => cert,
            Err(e) => {
                tracing::warn!(ca = %ca.name, error = %e, "no CRL for this CA: no certificate");
                continue;
            }
        };
        match token.signer(&ca.key_label, ca.rsa_padding) {
            Ok(signer)
                if *signer.public_key()
                    == *certificate.tbs_certificate().subject_public_key_info() =>
            {
                out.push(CrlAuthority {
                    name: ca.name.clone(),
                    certificate,
                    signer: Arc::new(signer),
                });
            }
            Ok(_) => {
                tracing::warn!(ca = %ca.name, "no CRL for this CA: its certificate is for another key");
            }
            Err(e) => {
                tracing::warn!(ca = %ca.name, error = %e, "no CRL for this CA: its key is not on the token");
            }
        }
    }
    out
}

/// What a configuration reload needs.
struct Reload {
    shared: Arc<EndpointShared>,
    token: Pkcs11Token,
    endpoints: Arc<Endpoints>,
    /// The configuration file as last loaded.
    running: Config,
    /// Its text.
    running_text: Arc<std::sync::RwLock<String>>,
    /// The endpoint names the admin socket accepts.
    endpoint_names: Arc<std::sync::RwLock<Vec<String>>>,
    /// The server-wide client certificate verifier (mTLS).
    client_verifiers: Arc<ServerClientVerifier>,
}

/// Every endpoint name of `config`, the default one first.
fn endpoint_names_of(config: &Config) -> Vec<String> {
    config
        .acme
        .iter()
        .chain(&config.endpoints)
        .map(|e| e.name.clone())
        .collect()
}

/// SIGHUP: the configuration file is read again, and its endpoints, certificate profiles
/// and rate limits replace the running ones; no connection is dropped. A file that does not
/// load, or whose endpoints cannot be built (a CA key missing on the token), is refused with
/// a log line and the running configuration stays. Sections that take effect only at start
/// are named when they changed.
#[cfg(unix)]
async fn reload_on_hangup(mut reload: Reload, stopped: impl Future<Output = ()>) {
    use tokio::signal::unix::{SignalKind, signal};
    let Ok(mut hangup) = signal(SignalKind::hangup()) else {
        tracing::warn!("no SIGHUP handler: configuration reloads are not available");
        return;
    };
    tokio::pin!(stopped);
    loop {
        tokio::select! {
            () = &mut stopped => return,
            _ = hangup.recv() => {}
        }
        let _ = sd_notify::notify(false, &[sd_notify::NotifyState::Reloading]);
        let path = reload.running.path.clone();
        let loaded = std::fs::read_to_string(&path)
            .map_err(|e| format!("{}: cannot read: {e}", path.display()))
            .and_then(|text| {
                Config::parse(&path, &text)
                    .map(|config| (config, text))
                    .map_err(|e| e.to_string())
            });
        let (config, text) = match loaded {
            Ok(loaded) => loaded,
            Err(e) => {
                tracing::error!(error = %e,
                    "configuration reload refused; the running configuration stays");
                let _ = sd_notify::notify(false, &[sd_notify::NotifyState::Ready]);
                continue;
            }
        };
        let (shared, token, candidate) = (
            Arc::clone(&reload.shared),
            reload.token.clone(),
            config.clone(),
        );
        let built = tokio::task::spawn_blocking(move || {
            let verifier = client_verifier(&candidate)?;
            shared
                .routes(&candidate, &token)
                .map(|(_, routes)| (routes, verifier))
        })
        .await;
        match built {
            Ok(Ok((routes, verifier))) => {
                reload.endpoints.replace(routes);
                reload.client_verifiers.set(verifier);
                for change in crate::config::reload_changes(&reload.running, &config) {
                    tracing::info!(%change, "configuration reloaded");
                }
                for section in crate::config::restart_sections(&reload.running, &config) {
                    tracing::warn!(
                        section,
                        "changed in the file, but takes effect only at the next start"
                    );
                }
                reload.running = config;
                if let Ok(mut running) = reload.running_text.write() {
                    *running = text;
                }
                if let Ok(mut names) = reload.endpoint_names.write() {
                    *names = endpoint_names_of(&reload.running);
                }
            }
            Ok(Err(e)) => tracing::error!(error = %e.0,
                "configuration reload refused; the running configuration stays"),
            Err(e) => tracing::error!(error = %e,
                "configuration reload failed; the running configuration stays"),
        }
        let _ = sd_notify::notify(false, &[sd_notify::NotifyState::Ready]);
    }
}

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let Ok(mut term) =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        else {
            let _ = ctrl_c.await;
            return;
        };
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = ctrl_c.await;
    }
}

/// The issuing CA of the ACME profile: key on the token, certificate and chain from files.
/// What every ACME endpoint of the server shares: one store, one validator, one token.
struct EndpointShared {
    store: Store,
    /// Validation settings of `[validation]`; an endpoint may override some.
    va_config: VaConfig,
    resolver: Arc<dyn crate::va::resolver::Resolver>,
    validation: crate::config::ValidationConfig,
    runner: HsmRunner,
    clock: Arc<dyn Clock>,
    revocations: tokio::sync::mpsc::UnboundedSender<String>,
    sealer: Option<Arc<dyn Sealer>>,
    suffixes: Arc<SuffixList>,
    network: crate::policy::network::NetworkPolicy,
    body_timeout: Duration,
    nonces: Arc<crate::wfe::nonce::NonceStore>,
    base_url: String,
}

impl EndpointShared {
    /// Every endpoint of `config`: the default one at its original URLs, and under
    /// `/acme/<name>/` with every other; each has its RA (policy, issuing CA, URLs) over the
    /// one store and token. Also returns the default endpoint's RA, which runs recovery,
    /// pruning and the watchdog's store check.
    fn routes(&self, config: &Config, token: &Pkcs11Token) -> Result<(Ra, Routes), StartError> {
        let acme = config
            .acme
            .as_ref()
            .ok_or_else(|| StartError("the configuration has no [acme] section".into()))?;
        let mut issuers: Vec<(String, bool, Arc<Issuer>)> = Vec::new();
        let mut issuer_for = |endpoint: &AcmeConfig| -> Result<Arc<Issuer>, StartError> {
            if let Some((_, _, issuer)) = issuers.iter().find(|(ca, client_auth, _)| {
                *ca == endpoint.ca && *client_auth == endpoint.client_auth
            }) {
                return Ok(Arc::clone(issuer));
            }
            let issuer = Arc::new(load_issuer(config, token, endpoint)?);
            issuers.push((
                endpoint.ca.clone(),
                endpoint.client_auth,
                Arc::clone(&issuer),
            ));
            Ok(issuer)
        };
        let urls = Urls::new(&self.base_url);
        let issuer = issuer_for(acme)?;
        let ra = self.ra(config, acme, Arc::clone(&issuer), &urls)?;
        let default = self.wfe(ra.clone(), acme, urls)?;
        let mut named = std::collections::BTreeMap::new();
        for endpoint in std::iter::once(acme).chain(&config.endpoints) {
            let urls = Urls::endpoint(&self.base_url, &endpoint.name);
            let issuer = issuer_for(endpoint)?;
            let endpoint_ra = self.ra(config, endpoint, issuer, &urls)?;
            named.insert(
                endpoint.name.clone(),
                self.wfe(endpoint_ra, endpoint, urls)?,
            );
            tracing::info!(endpoint = %endpoint.name, ca = %endpoint.ca, enabled = endpoint.enabled,
                directory = %format!("{}/acme/{}/directory", self.base_url, endpoint.name),
                "ACME endpoint");
        }
        Ok((ra, Routes { default, named }))
    }

    /// The RA of `endpoint` at `urls`, issuing with `issuer`.
    fn ra(
        &self,
        config: &Config,
        endpoint: &AcmeConfig,
        issuer: Arc<Issuer>,
        urls: &Urls,
    ) -> Result<Ra, StartError> {
        let policy = Policy {
            allowed_domains: endpoint.allowed_domains.clone(),
            max_validity: u64::from(endpoint.validity_days) * 86_400,
            wildcards: endpoint.wildcards,
            wildcard_http01: endpoint.wildcard_http01,
            ip_identifiers: endpoint.ip_identifiers,
            validation_networks: self.network.clone(),
            max_identifiers: endpoint
                .identifiers_per_order
                .unwrap_or(config.rate_limits.identifiers_per_order),
            challenge_types: endpoint.challenges.clone(),
            identifier_rules: endpoint.identifier_rules.clone(),
            ..Policy::default()
        };
        Ok(Ra::new(RaParts {
            store: self.store.clone(),
            policy,
            validator: self.validator(endpoint)?,
            issuer,
            runner: self.runner.clone(),
            clock: Arc::clone(&self.clock),
            settings: RaSettings {
                account_url_prefix: urls.account_prefix(),
                profile: endpoint.name.clone(),
                eab_required: endpoint.eab_required,
                new_account_url: urls.acme("new-account"),
                limits: config.rate_limits,
                suffixes: Arc::clone(&self.suffixes),
                pre_authorization: endpoint.pre_authorization,
                authz_reuse: endpoint.authz_reuse,
                caa_recheck_age: endpoint.caa_recheck,
                certificate_profiles: config.profiles_of(endpoint),
                advertise_profiles: !endpoint.certificate_profiles.is_empty(),
                single_active_certificate: endpoint.single_active_certificate,
                terms: endpoint.terms.clone(),
                account_approval: endpoint.account_approval,
                key_rollover_approval: endpoint.key_rollover_approval,
                order_lifetime: endpoint.order_lifetime,
                authz_lifetime: endpoint.authz_lifetime,
                ..RaSettings::default()
            },
            revocations: self.revocations.clone(),
            sealer: self.sealer.clone(),
        }))
    }

    /// The validator of `endpoint`: `[validation]`'s, with the endpoint's CAA identities and
    /// its own redirect ports, resolver and DNSSEC where it sets them.
    fn validator(
        &self,
        endpoint: &AcmeConfig,
    ) -> Result<Arc<dyn crate::va::Validator>, StartError> {
        let config = VaConfig {
            caa_identities: endpoint.caa_identities.clone(),
            redirect_ports: endpoint
                .redirect_ports
                .clone()
                .unwrap_or_else(|| self.va_config.redirect_ports.clone()),
            ..self.va_config.clone()
        };
        let resolver = if endpoint.dns_resolver.is_some() || endpoint.dnssec.is_some() {
            let dnssec = match endpoint.dnssec {
                Some(true) => crate::va::resolver::Dnssec::Root,
                Some(false) => crate::va::resolver::Dnssec::Off,
                None => self.validation.dnssec.clone(),
            };
            let resolver = DnsResolver::with_dnssec(
                endpoint.dns_resolver.or(self.validation.dns_resolver),
                &dnssec,
            )
            .map_err(|e| StartError(format!("endpoint {:?}: DNS resolver: {e}", endpoint.name)))?;
            Arc::new(resolver) as Arc<dyn crate::va::resolver::Resolver>
        } else {
            Arc::clone(&self.resolver)
        };
        Ok(Arc::new(Va::new(config, resolver)))
    }

    /// The front end of `endpoint` over `ra`.
    fn wfe(&self, ra: Ra, endpoint: &AcmeConfig, urls: Urls) -> Result<Arc<Wfe>, StartError> {
        let client_cas = endpoint
            .client_ca
            .as_deref()
            .map(|path| ClientCas::load(path).map(Arc::new))
            .transpose()
            .map_err(|e| StartError(format!("endpoint {:?}: {e}", endpoint.name)))?;
        Ok(Wfe::new(
            ra,
            WfeSettings {
                urls,
                enabled: endpoint.enabled,
                client_cas,
                retry_after: endpoint.retry_after,
                meta: DirectoryMeta {
                    terms_of_service: endpoint.terms_of_service.clone(),
                    website: endpoint.website.clone(),
                    caa_identities: endpoint.caa_identities.clone(),
                    external_account_required: endpoint.eab_required,
                    profiles: std::collections::BTreeMap::new(),
                },
                body_timeout: self.body_timeout,
                nonces: Arc::clone(&self.nonces),
            },
        ))
    }
}

/// The server-wide client certificate verifier for the endpoints of `config` that require
/// one (mTLS); `None` when none does.
fn client_verifier(
    config: &Config,
) -> Result<Option<Arc<dyn rustls::server::danger::ClientCertVerifier>>, StartError> {
    let mut cas = Vec::new();
    for endpoint in config.acme.iter().chain(&config.endpoints) {
        if let Some(path) = &endpoint.client_ca {
            cas.push(
                ClientCas::load(path)
                    .map_err(|e| StartError(format!("endpoint {:?}: {e}", endpoint.name)))?,
            );
        }
    }
    let refs: Vec<&ClientCas> = cas.iter().collect();
    crate::wfe::client_auth::server_verifier(&refs).map_err(StartError)
}

fn load_issuer(
    config: &Config,
    token: &Pkcs11Token,
    acme: &AcmeConfig,
) -> Result<Issuer, StartError> {
    let ca = config
        .ca(&acme.ca)
        .ok_or_else(|| StartError(format!("[acme] ca {:?} is not configured", acme.ca)))?;
    let signer = token
        .signer(&ca.key_label, ca.rsa_padding)
        .map_err(|e| StartError(format!("CA {:?}: {e}", ca.name)))?;
    let cert = read_pem_certificate(&ca.certificate)
        .map_err(fail(&format!("CA {:?} certificate", ca.name)))?;
    // Certificates above it, nearest first.
    let mut above = Vec::new();
    let mut next = ca.issuer.clone();
    while let CaIssuer::Ca(parent) = next {
        let parent = config
            .ca(&parent)
            .ok_or_else(|| StartError(format!("CA {parent:?} is not configured")))?;
        above.push(
            read_pem_certificate(&parent.certificate)
                .map_err(fail(&format!("CA {:?}", parent.name)))?,
        );
        next = parent.issuer.clone();
    }
    if let (CaIssuer::External, Some(chain)) = (&ca.issuer, &ca.chain) {
        let pem =
            std::fs::read(chain).map_err(|e| StartError(format!("{}: {e}", chain.display())))?;
        above.extend(
            Certificate::load_pem_chain(&pem)
                .map_err(|e| StartError(format!("{}: {e}", chain.display())))?,
        );
    }
    let mut issuer = Issuer::new(
        ca.name.clone(),
        Arc::new(signer),
        cert,
        &above,
        IssuerSettings {
            client_auth: acme.client_auth,
            distribution: config.distribution(&ca.name),
        },
    )
    .map_err(|e| StartError(format!("CA {:?}: {e}", ca.name)))?;
    for path in &ca.alternate_chains {
        let pem =
            std::fs::read(path).map_err(|e| StartError(format!("{}: {e}", path.display())))?;
        let chain = Certificate::load_pem_chain(&pem)
            .map_err(|e| StartError(format!("{}: {e}", path.display())))?;
        issuer
            .add_alternate_chain(&chain)
            .map_err(|e| StartError(format!("{}: {e}", path.display())))?;
    }
    Ok(issuer)
}

fn read_pem_certificate(path: &std::path::Path) -> Result<Certificate, String> {
    let pem = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let mut certs =
        Certificate::load_pem_chain(&pem).map_err(|e| format!("{}: {e}", path.display()))?;
    if certs.is_empty() {
        return Err(format!("{}: no certificate", path.display()));
    }
    Ok(certs.remove(0))
}

/// The server's TLS configuration. With `tls_key_file` the operator manages key and
/// certificate. Otherwise the key lives on the token and the certificate is issued by the
/// ACME profile's CA and kept fresh while serving (`wfe::server_cert`).
fn server_tls(
    server: &ServerConfig,
    token: &Pkcs11Token,
    issuer: &Arc<Issuer>,
    default_lifetime: Duration,
    budget: tls::TlsBudget,
    clients: Option<Arc<dyn rustls::server::danger::ClientCertVerifier>>,
) -> Result<(Arc<rustls::ServerConfig>, Option<Arc<ServerCertificate>>), StartError> {
    if let Some(key_file) = &server.tls_key_file {
        let key = rustls::pki_types::PrivateKeyDer::from_pem_file(key_file)
            .map_err(|e| StartError(format!("{}: {e}", key_file.display())))?;
        let chain = CertificateDer::pem_file_iter(&server.tls_certificate)
            .and_then(Iterator::collect::<Result<Vec<_>, _>>)
            .map_err(|e| StartError(format!("{}: {e}", server.tls_certificate.display())))?;
        let config =
            tls::file_server_config(chain, key, clients).map_err(|e| StartError(e.to_string()))?;
        return Ok((config, None));
    }
    let settings = ServerCertificateSettings {
        key_label: &server.tls_key_label,
        names: &server.tls_names,
        path: &server.tls_certificate,
        lifetime: server.tls_validity.unwrap_or(default_lifetime),
    };
    let (certificate, config) =
        ServerCertificate::start(&settings, token, Arc::clone(issuer), budget, clients)
            .map_err(StartError)?;
    Ok((config, Some(certificate)))
}
