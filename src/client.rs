//! The command-line client: `simverify compare | embed | verify | healthcheck` against a running server.
//!
//! Images go up as `multipart/form-data` files, exactly as any other client sends them; the answer
//! is printed as pretty JSON on stdout, or, for an error status, the problem JSON on stderr with a
//! non-zero exit.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{bail, Context};
use clap::{Args, Subcommand, ValueEnum};
use reqwest::multipart::{Form, Part};
use reqwest::{StatusCode, Url};

use crate::config::Secret;

/// The client subcommands; `main` flattens them into its own subcommand list.
#[derive(Debug, Clone, Subcommand)]
pub enum ClientCommand {
    /// Ask a running server whether two images show the same thing.
    Compare(CompareArgs),
    /// Ask a running server for the embeddings of one or more images.
    Embed(EmbedArgs),
    /// Check a candidate image against one or more reference images.
    Verify(VerifyArgs),
    /// Exit 0 when the server answers GET /health (or /ready with --ready), 1 otherwise.
    Healthcheck(HealthcheckArgs),
}

/// Where the server is.
#[derive(Debug, Clone, Args)]
pub struct ServerArgs {
    /// Base URL of the simverify server.
    #[arg(long, env = "SIMVERIFY_SERVER", default_value = "http://127.0.0.1:8080")]
    pub server: String,

    /// Give up on the server after this many seconds.
    #[arg(long, env = "SIMVERIFY_CLIENT_TIMEOUT_SECS", default_value_t = 60)]
    pub timeout_secs: u64,

    /// API key for a server that requires one (sent as `Authorization: Bearer KEY`).
    #[arg(long, env = "SIMVERIFY_API_KEY", hide_env_values = true)]
    pub api_key: Option<Secret<String>>,
}

#[derive(Debug, Clone, Args)]
pub struct CompareArgs {
    /// First image file.
    pub image_a: PathBuf,
    /// Second image file.
    pub image_b: PathBuf,
    /// Model to use; the server's default when omitted.
    #[arg(long)]
    pub model: Option<String>,
    /// Distance below which the images match, instead of the model's calibrated threshold.
    #[arg(long)]
    pub threshold: Option<f32>,
    #[command(flatten)]
    pub server: ServerArgs,
}

#[derive(Debug, Clone, Args)]
pub struct EmbedArgs {
    /// Image files, embedded in this order.
    #[arg(required = true)]
    pub images: Vec<PathBuf>,
    /// Model to use; the server's default when omitted.
    #[arg(long)]
    pub model: Option<String>,
    #[command(flatten)]
    pub server: ServerArgs,
}

#[derive(Debug, Clone, Args)]
pub struct VerifyArgs {
    /// The image to check.
    pub candidate: PathBuf,
    /// Reference images of the claimed identity.
    #[arg(required = true)]
    pub references: Vec<PathBuf>,
    /// How the candidate's distances to the references combine; the server's default (min) when omitted.
    #[arg(long, value_enum)]
    pub aggregate: Option<Aggregate>,
    /// Model to use; the server's default when omitted.
    #[arg(long)]
    pub model: Option<String>,
    /// Distance below which the candidate is verified, instead of the model's calibrated threshold.
    #[arg(long)]
    pub threshold: Option<f32>,
    #[command(flatten)]
    pub server: ServerArgs,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Aggregate {
    /// The distance to the closest reference.
    Min,
    /// The mean distance to the references.
    Mean,
}

impl Aggregate {
    fn as_str(self) -> &'static str {
        match self {
            Self::Min => "min",
            Self::Mean => "mean",
        }
    }
}

#[derive(Debug, Clone, Args)]
pub struct HealthcheckArgs {
    /// Check GET /ready (models loaded and warm, not draining) instead of GET /health.
    #[arg(long)]
    pub ready: bool,
    #[command(flatten)]
    pub server: ServerArgs,
}

/// What the server said.
#[derive(Debug, Clone)]
pub struct Answer {
    pub status: StatusCode,
    pub body: String,
}

impl Answer {
    /// The body as indented JSON, or as it came when it is not JSON (a proxy's error page, say).
    pub fn pretty(&self) -> String {
        serde_json::from_str::<serde_json::Value>(&self.body)
            .ok()
            .and_then(|json| serde_json::to_string_pretty(&json).ok())
            .unwrap_or_else(|| self.body.clone())
    }

    pub fn json(&self) -> anyhow::Result<serde_json::Value> {
        serde_json::from_str(&self.body).context("the server's answer is not JSON")
    }
}

/// Runs one client command: prints the answer, and fails (exit status 1) when the server could not
/// be reached or answered with an error status.
pub async fn run(command: ClientCommand) -> anyhow::Result<()> {
    let answer = send(&command).await?;
    if answer.status.is_success() {
        let mut stdout = std::io::stdout().lock();
        match writeln!(stdout, "{}", answer.pretty()) {
            // The reader closed the pipe (`| head`): its choice, not a failure.
            Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
            written => written.context("cannot write the answer"),
        }
    } else {
        eprintln!("{}", answer.pretty());
        bail!("the server answered {}", answer.status)
    }
}

/// Sends one client command and returns the server's answer, whatever its status.
pub async fn send(command: &ClientCommand) -> anyhow::Result<Answer> {
    match command {
        ClientCommand::Compare(args) => {
            let form = Form::new()
                .part("image_a", file_part(&args.image_a)?)
                .part("image_b", file_part(&args.image_b)?);
            let form = text_fields(form, args.model.as_deref(), args.threshold, None);
            post(&args.server, "compare", form).await
        }
        ClientCommand::Embed(args) => {
            let mut form = Form::new();
            for image in &args.images {
                form = form.part("images", file_part(image)?);
            }
            let form = text_fields(form, args.model.as_deref(), None, None);
            post(&args.server, "embed", form).await
        }
        ClientCommand::Verify(args) => {
            let mut form = Form::new().part("candidate", file_part(&args.candidate)?);
            for reference in &args.references {
                form = form.part("references", file_part(reference)?);
            }
            let form = text_fields(form, args.model.as_deref(), args.threshold, args.aggregate);
            post(&args.server, "verify", form).await
        }
        ClientCommand::Healthcheck(args) => {
            let path = if args.ready { "ready" } else { "health" };
            let url = endpoint(&args.server.server, path)?;
            let response = http_client(&args.server)?
                .get(url.clone())
                .send()
                .await
                .with_context(|| format!("cannot reach {url}"))?;
            answer(response).await
        }
    }
}

fn text_fields(mut form: Form, model: Option<&str>, threshold: Option<f32>, aggregate: Option<Aggregate>) -> Form {
    if let Some(model) = model {
        form = form.text("model", model.to_string());
    }
    if let Some(threshold) = threshold {
        form = form.text("threshold", threshold.to_string());
    }
    if let Some(aggregate) = aggregate {
        form = form.text("aggregate", aggregate.as_str());
    }
    form
}

/// A file as a form part. The server sniffs the format from the bytes, so no content type is guessed here.
fn file_part(path: &Path) -> anyhow::Result<Part> {
    // A blocking read is fine here: the client does one request at a time and nothing else meanwhile.
    let bytes = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "image".to_string());
    Ok(Part::bytes(bytes).file_name(name))
}

async fn post(server: &ServerArgs, path: &str, form: Form) -> anyhow::Result<Answer> {
    let url = endpoint(&server.server, path)?;
    let response = http_client(server)?
        .post(url.clone())
        .multipart(form)
        .send()
        .await
        .with_context(|| format!("cannot reach {url}"))?;
    answer(response).await
}

async fn answer(response: reqwest::Response) -> anyhow::Result<Answer> {
    let status = response.status();
    let body = response.text().await.context("the server's answer broke off")?;
    Ok(Answer { status, body })
}

fn http_client(server: &ServerArgs) -> anyhow::Result<reqwest::Client> {
    let mut headers = reqwest::header::HeaderMap::new();
    if let Some(Secret(key)) = &server.api_key {
        let mut value = reqwest::header::HeaderValue::try_from(format!("Bearer {key}"))
            .context("the API key is not a valid header value")?;
        // Sensitive: kept out of reqwest's debug output.
        value.set_sensitive(true);
        headers.insert(reqwest::header::AUTHORIZATION, value);
    }
    reqwest::Client::builder()
        .default_headers(headers)
        .timeout(Duration::from_secs(server.timeout_secs.max(1)))
        .user_agent(concat!("simverify/", env!("CARGO_PKG_VERSION")))
        .build()
        .context("cannot set up the HTTP client")
}

/// `base` + `/path`, keeping any path prefix `base` has (a server behind `https://host/simverify`).
fn endpoint(base: &str, path: &str) -> anyhow::Result<Url> {
    let url = format!("{}/{path}", base.trim_end_matches('/'));
    let parsed =
        Url::parse(&url).with_context(|| format!("{base:?} is not a server URL (e.g. http://127.0.0.1:8080)"))?;
    if !matches!(parsed.scheme(), "http" | "https") {
        bail!("{base:?} is not an http or https URL");
    }
    Ok(parsed)
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(subcommand)]
        command: ClientCommand,
    }

    #[test]
    fn endpoints_keep_the_base_path() {
        assert_eq!(
            endpoint("http://127.0.0.1:8080", "compare").unwrap().as_str(),
            "http://127.0.0.1:8080/compare"
        );
        assert_eq!(
            endpoint("https://h/api/", "ready").unwrap().as_str(),
            "https://h/api/ready"
        );
        assert!(endpoint("127.0.0.1:8080", "compare").is_err());
        assert!(endpoint("ftp://h", "compare").is_err());
    }

    #[test]
    fn parses_the_documented_command_lines() {
        let verify = Cli::try_parse_from([
            "simverify",
            "verify",
            "c.png",
            "r1.png",
            "r2.png",
            "--aggregate",
            "mean",
            "--threshold",
            "0.4",
        ])
        .unwrap()
        .command;
        let ClientCommand::Verify(verify) = verify else {
            panic!("not verify")
        };
        assert_eq!(verify.references, [PathBuf::from("r1.png"), PathBuf::from("r2.png")]);
        assert_eq!(verify.aggregate, Some(Aggregate::Mean));
        assert_eq!(verify.threshold, Some(0.4));

        assert!(
            Cli::try_parse_from(["simverify", "verify", "c.png"]).is_err(),
            "references are required"
        );
        assert!(
            Cli::try_parse_from(["simverify", "embed"]).is_err(),
            "an image is required"
        );
        assert!(
            Cli::try_parse_from(["simverify", "compare", "a.png"]).is_err(),
            "two images are required"
        );
    }

    #[test]
    fn pretty_prints_json_and_passes_other_text_through() {
        let json = Answer {
            status: StatusCode::OK,
            body: r#"{"match":true}"#.into(),
        };
        let html = Answer {
            status: StatusCode::BAD_GATEWAY,
            body: "<html>bad gateway</html>".into(),
        };

        assert_eq!(json.pretty(), "{\n  \"match\": true\n}");
        assert_eq!(html.pretty(), "<html>bad gateway</html>");
    }

    #[tokio::test]
    async fn a_missing_file_is_named_in_the_error() {
        let command = Cli::try_parse_from(["simverify", "compare", "/nonexistent/a.png", "/nonexistent/b.png"])
            .unwrap()
            .command;

        let err = send(&command).await.unwrap_err();

        assert!(format!("{err:#}").contains("/nonexistent/a.png"), "{err:#}");
    }
}
