//! The command-line client against the real server with the bundled model: it sends what the server
//! reads, gets the server's own answers, and reports errors and an unreachable server.

use std::path::{Path, PathBuf};

use crate::common::{assert_close, digit, form, Server};
use clap::Parser;
use reqwest::StatusCode;
use simverify::client::{send, ClientCommand};

#[derive(Parser)]
struct Cli {
    #[command(subcommand)]
    command: ClientCommand,
}

/// Parses a command line as `simverify` would.
fn command(args: &[&str]) -> ClientCommand {
    let argv = std::iter::once("simverify").chain(args.iter().copied());
    Cli::try_parse_from(argv).expect("the command line parses").command
}

fn write(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, bytes).expect("the temporary directory is writable");
    path
}

fn s(path: &Path) -> &str {
    path.to_str().expect("temporary paths are UTF-8")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_commands_get_the_servers_own_answers() {
    let server = Server::start(&[]).await;
    let dir = tempfile::tempdir().unwrap();
    let (seven_a, seven_b, three) = (digit(7, 0), digit(7, 1), digit(3, 0));
    let a = write(dir.path(), "seven-a.png", &seven_a);
    let b = write(dir.path(), "seven-b.png", &seven_b);
    let c = write(dir.path(), "three.png", &three);
    let url = server.base.as_str();

    // compare: the same answer as a direct request with the same files.
    let answer = send(&command(&["compare", s(&a), s(&b), "--server", url]))
        .await
        .unwrap();
    let direct = server.compare(&seven_a, &seven_b).await.ok();
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.body);
    let json = answer.json().unwrap();
    assert_eq!(json["match"], true, "{json}");
    assert_close(
        json["distance"].as_f64().unwrap() as f32,
        direct["distance"].as_f64().unwrap() as f32,
        1e-6,
        "distance",
    );

    // A threshold of 0 can never match: the text field reaches the server.
    let strict = send(&command(&[
        "compare",
        s(&a),
        s(&b),
        "--threshold",
        "0",
        "--server",
        url,
    ]))
    .await
    .unwrap();
    let strict = strict.json().unwrap();
    assert_eq!(
        (strict["match"].clone(), strict["threshold"].clone()),
        (false.into(), 0.0.into()),
        "{strict}"
    );

    // embed: one embedding per file, in the order given.
    let embedded = send(&command(&["embed", s(&c), s(&a), "--server", url]))
        .await
        .unwrap()
        .json()
        .unwrap();
    let direct = server
        .post_form("/embed", form(&[("images", &three), ("images", &seven_a)]))
        .await
        .ok();
    assert_eq!(embedded["embeddings"], direct["embeddings"], "{embedded}");
    assert_eq!(embedded["embeddings"].as_array().unwrap().len(), 2);

    // verify: min and mean over the references, as asked.
    let args =
        |aggregate: &'static str| command(&["verify", s(&a), s(&b), s(&c), "--aggregate", aggregate, "--server", url]);
    let min = send(&args("min")).await.unwrap().json().unwrap();
    let mean = send(&args("mean")).await.unwrap().json().unwrap();
    let distances: Vec<f32> = min["distances"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d.as_f64().unwrap() as f32)
        .collect();
    assert_eq!(distances.len(), 2, "{min}");
    assert_close(
        min["distance"].as_f64().unwrap() as f32,
        distances[0].min(distances[1]),
        1e-6,
        "min",
    );
    assert_close(
        mean["distance"].as_f64().unwrap() as f32,
        (distances[0] + distances[1]) / 2.0,
        1e-6,
        "mean",
    );
    assert_eq!(min["verified"], true, "the closest reference is the same digit: {min}");

    // healthcheck, alive and ready.
    assert_eq!(
        send(&command(&["healthcheck", "--server", url])).await.unwrap().status,
        StatusCode::OK
    );
    assert_eq!(
        send(&command(&["healthcheck", "--ready", "--server", url]))
            .await
            .unwrap()
            .status,
        StatusCode::OK
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_error_status_comes_back_with_the_problem_and_fails_the_command() {
    let server = Server::start(&[]).await;
    let dir = tempfile::tempdir().unwrap();
    let a = write(dir.path(), "a.png", &digit(1, 0));
    let broken = write(dir.path(), "broken.png", b"not an image at all");
    let url = server.base.as_str();

    let unknown = command(&["compare", s(&a), s(&a), "--model", "no-such-model", "--server", url]);
    let answer = send(&unknown).await.unwrap();
    let undecodable = send(&command(&["compare", s(&a), s(&broken), "--server", url]))
        .await
        .unwrap();

    assert_eq!(answer.status, StatusCode::NOT_FOUND, "{}", answer.body);
    assert!(
        answer.json().unwrap()["detail"].as_str().unwrap().contains("mnist"),
        "{}",
        answer.body
    );
    assert!(undecodable.status.is_client_error(), "{}", undecodable.body);
    assert!(
        simverify::client::run(unknown).await.is_err(),
        "a 404 fails the command"
    );
}

#[tokio::test]
async fn an_unreachable_server_fails_the_command_with_its_address() {
    // Bind and drop a listener: nothing listens on that port afterwards.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("http://127.0.0.1:{port}");

    let err = send(&command(&["healthcheck", "--server", &url])).await.unwrap_err();

    assert!(format!("{err:#}").contains(&url), "{err:#}");
}
