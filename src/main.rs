//! The `simverify` binary: the HTTP service (`serve`), its command-line client, `dedup`, `reindex`, and the
//! OpenAPI printer.

use std::process::ExitCode;

use clap::{Parser, Subcommand};
use simverify::client::ClientCommand;
use simverify::config::{LogFormat, ServeConfig};
use simverify::dedup::DedupConfig;
use simverify::http::{openapi_spec, App};
use simverify::keys::KeysCommand;
use simverify::reindex::ReindexConfig;
use tracing_subscriber::EnvFilter;

#[derive(Parser)]
#[command(
    name = "simverify",
    version,
    about = "Decides whether two images show the same thing"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the HTTP service.
    // Boxed: the settings are far larger than the other commands' arguments.
    Serve(Box<ServeConfig>),
    #[command(flatten)]
    Client(ClientCommand),
    /// Manage the API keys the server accepts (--api-keys-file).
    #[command(subcommand)]
    Keys(KeysCommand),
    /// Find every group of duplicate images in a folder (or, with --catalogue, among the enrolled ones):
    /// JSON on standard output (or --json), CSV (--csv), an HTML report (--report). Takes `serve`'s flags.
    // Boxed: it carries the server's settings.
    Dedup(Box<DedupConfig>),
    /// Print the OpenAPI document (JSON) of the HTTP API.
    Openapi,
    /// Re-embed the stored images that other weights embedded, with the loaded models (only images kept
    /// with --keep-images; the others are counted, to be re-enrolled). Takes `serve`'s flags.
    // Boxed: it carries the server's settings.
    Reindex(Box<ReindexConfig>),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Serve(config) => serve(*config),
        Command::Client(command) => run_client(command),
        Command::Keys(command) => simverify::keys::run(command),
        Command::Dedup(config) => {
            init_logging(config.serve.log_format);
            simverify::dedup::run(*config)
        }
        Command::Openapi => print_openapi(),
        Command::Reindex(config) => {
            init_logging(config.serve.log_format);
            simverify::reindex::run(*config)
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::FAILURE
        }
    }
}

fn serve(config: ServeConfig) -> anyhow::Result<()> {
    init_logging(config.log_format);
    tracing::info!(?config, "configuration");
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    runtime.block_on(async {
        let app = App::build(config).await?;
        let addr = app.local_addr();
        println!("simverify listening on http://{addr} (API docs at http://{addr}/docs)");
        tracing::info!(%addr, "listening");
        app.run_until_stopped(shutdown_signal()).await
    })
}

fn run_client(command: ClientCommand) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    runtime.block_on(simverify::client::run(command))
}

fn print_openapi() -> anyhow::Result<()> {
    println!("{}", openapi_spec().to_pretty_json()?);
    Ok(())
}

/// Logs to stderr (stdout carries what the commands print), filtered by `RUST_LOG`, `info` by default.
/// JSON for machines (one object a line, event fields at the top level); text for people, without the
/// module path, which says little to an operator and doubles the line.
fn init_logging(format: LogFormat) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Text => builder.with_target(false).init(),
        LogFormat::Json => builder.json().flatten_event(true).with_current_span(true).init(),
    }
}

/// Completes on Ctrl-C or SIGTERM (what `docker stop` and Kubernetes send).
async fn shutdown_signal() {
    let ctrl_c = async {
        if let Err(err) = tokio::signal::ctrl_c().await {
            tracing::error!(%err, "cannot listen for Ctrl-C");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(err) => {
                tracing::error!(%err, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => tracing::info!("Ctrl-C received"),
        () = terminate => tracing::info!("SIGTERM received"),
    }
}
