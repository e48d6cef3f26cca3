//! The `train` binary: trains a Siamese embedding model and writes its directory, or evaluates one. It only
//! parses the command line and prints; the pipelines live in the library's `train` module.

use anyhow::Result;
use clap::{Parser, Subcommand};
use simverify::model::card::ModelCard;
use simverify::train::model_eval::{evaluate_model, EvalOptions};
use simverify::train::photos::options::PhotoOptions;
use simverify::train::photos::pipeline::train_photo_model;
use simverify::train::supervised::options::SupervisedOptions;
use simverify::train::supervised::pipeline::train_supervised;

/// Trains a Siamese embedding network with a contrastive loss and writes `model.json`,
/// `model.safetensors` and a `report/` of plots; `train eval` measures an existing model.
#[derive(Parser)]
#[command(version, args_conflicts_with_subcommands = true)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    #[command(flatten)]
    train: SupervisedOptions,
}

#[derive(Subcommand)]
enum Command {
    /// Evaluates a trained model on held-out pairs and prints its figures as JSON.
    Eval(EvalOptions),
    /// Trains a photo model for near-duplicate detection from a folder of unlabelled images: two random
    /// edits of one source are a pair, every other image in the batch a negative (NT-Xent).
    Photos(Box<PhotoOptions>),
}

fn main() -> Result<()> {
    tracing_subscriber::fmt().with_writer(std::io::stderr).init();
    let cli = Cli::parse();
    let (card, out) = match cli.command {
        Some(Command::Eval(options)) => {
            println!("{}", serde_json::to_string_pretty(&evaluate_model(&options)?)?);
            return Ok(());
        }
        Some(Command::Photos(options)) => (train_photo_model(&options)?, options.out),
        None => (train_supervised(&cli.train)?, cli.train.out),
    };
    print_trained(&card, &out)
}

/// The figures on standard output, where scripts read them; what was written on standard error.
fn print_trained(card: &ModelCard, out: &std::path::Path) -> Result<()> {
    println!("{}", serde_json::to_string_pretty(&card.evaluation)?);
    eprintln!(
        "wrote {} (threshold {:.4}, best {} {})",
        out.display(),
        card.decision.threshold,
        if card.training.self_supervised.is_some() {
            "step"
        } else {
            "epoch"
        },
        card.training.best_epoch
    );
    Ok(())
}
