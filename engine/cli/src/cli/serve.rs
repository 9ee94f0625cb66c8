//! `adr serve`: the configuration from file, environment and flags, then the service.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use adr_server::config::{Config, LogFormat};
use anyhow::Context;
use clap::Args;

#[derive(Debug, Args)]
pub(crate) struct ServeArgs {
    /// The configuration file (the seed's `config.yaml` sections); default: ./config.yaml
    /// when there is one, else built-in defaults.
    #[arg(long, short, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Address to listen on (overrides `api.host` and API_HOST).
    #[arg(long, value_name = "ADDRESS")]
    host: Option<String>,
    /// Port to listen on; 0 takes a free one (overrides `api.port` and API_PORT).
    #[arg(long)]
    port: Option<u16>,
    /// Folder of the embedded store (overrides `storage.data_dir` and ADR_DATA_DIR).
    #[arg(long, value_name = "DIR")]
    data_dir: Option<PathBuf>,
    /// A rule file to run (repeatable; overrides `rules` and ADR_RULES).
    #[arg(long = "rules", value_name = "FILE")]
    rules: Vec<PathBuf>,
    /// Print the configuration in force (secrets hidden) and exit.
    #[arg(long)]
    print_config: bool,
    /// Make an API token named NAME, print it (it is shown once; the store keeps its
    /// hash), and exit.
    #[arg(long, value_name = "NAME")]
    new_token: Option<String>,
}

/// The configuration: the file, the environment over it, the flags over both.
fn resolve(args: &ServeArgs, plugins: &[PathBuf]) -> anyhow::Result<Config> {
    let default_file = Path::new("config.yaml");
    let file = args
        .config
        .as_deref()
        .or_else(|| default_file.is_file().then_some(default_file));
    let env = |name: &str| std::env::var(name).ok();
    let mut config = Config::load(file, &env)?;
    if let Some(host) = &args.host {
        config.api.host.clone_from(host);
    }
    if let Some(port) = args.port {
        config.api.port = port;
    }
    if let Some(dir) = &args.data_dir {
        config.storage.data_dir.clone_from(dir);
    }
    if !args.rules.is_empty() {
        config.rules.clone_from(&args.rules);
    }
    if !plugins.is_empty() {
        config.plugins = plugins.to_vec();
    }
    config.check()?;
    Ok(config)
}

pub(crate) fn serve(
    args: &ServeArgs,
    plugins: &[PathBuf],
    quiet: bool,
) -> anyhow::Result<ExitCode> {
    let config = resolve(args, plugins)?;
    if args.print_config {
        print!("{}", config.to_yaml_redacted());
        return Ok(ExitCode::SUCCESS);
    }
    if let Some(name) = &args.new_token {
        let store = adr_server::store::Store::from_config(&config)?;
        let token = adr_server::auth::new_token().context("cannot read random bytes")?;
        store.insert_token(name, &adr_server::auth::hash(&token))?;
        println!("{token}");
        if !quiet {
            eprintln!(
                "API token `{name}` stored (as its hash) in {} {}; it is shown only this once",
                store.kind(),
                store.location()
            );
        }
        return Ok(ExitCode::SUCCESS);
    }
    let telemetry = adr_server::telemetry::init(
        &config.monitoring,
        if quiet {
            "error"
        } else {
            "warn,adr=info,adr_server=info,adr_engine=info"
        },
    )
    .map_err(anyhow::Error::msg)?;
    let mut runtime = tokio::runtime::Builder::new_multi_thread();
    if config.api.workers > 0 {
        runtime.worker_threads(config.api.workers);
    }
    let runtime = runtime
        .enable_all()
        .thread_name("adr-serve")
        .build()
        .context("cannot start the async runtime")?;
    let log_format = config.monitoring.log_format;
    let summary = runtime.block_on(adr_server::serve(
        config,
        |at| {
            let metrics = at
                .metrics
                .map(|m| format!(", metrics on http://{m}/metrics"))
                .unwrap_or_default();
            match log_format {
                LogFormat::Text => eprintln!("listening on http://{}/api/v1{metrics}", at.api),
                LogFormat::Json => tracing::info!(
                    api = %at.api,
                    metrics = ?at.metrics,
                    "listening on http://{}/api/v1",
                    at.api
                ),
            }
        },
        adr_server::shutdown_signal(),
    ))?;
    // Outside the runtime: the trace exporter's client blocks on a runtime of its own.
    drop(runtime);
    telemetry.shutdown();
    let alerts = summary.alerts.iter().map(|a| a.fired).sum::<u64>();
    match log_format {
        _ if quiet => {}
        LogFormat::Text => eprintln!(
            "stopped: {} events, {} keys, {alerts} alerts",
            summary.rows, summary.keys
        ),
        LogFormat::Json => tracing::info!(
            events = summary.rows,
            keys = summary.keys,
            alerts,
            "stopped"
        ),
    }
    Ok(ExitCode::SUCCESS)
}
