//! The model-only throughput ceiling: forward passes on one loaded model, no HTTP, no decoding, no queue.
//!
//! `cargo run --release --example forward_throughput -- [--model-dir models/mnist] [--seconds 5]`
//! prints images per second for several batch sizes; `scripts/bench` holds the service against it.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use clap::Parser;
use simverify::model::{device_label, load_model, load_model_unfolded, select_device, DeviceSetting};
use tch::{Kind, Tensor};

#[derive(Parser)]
struct Args {
    /// One model directory (model.json + weights).
    #[arg(long, default_value = "models/mnist")]
    model_dir: PathBuf,
    /// auto, cpu, cuda or cuda:N.
    #[arg(long, default_value = "auto")]
    device: DeviceSetting,
    /// libtorch intra-op threads; 0 keeps libtorch's default (every core).
    #[arg(long, default_value_t = 0)]
    torch_threads: i32,
    /// Measuring time per batch size, in seconds.
    #[arg(long, default_value_t = 5.0)]
    seconds: f64,
    /// Keep batch norms as separate passes instead of folding them into the convolutions (what folding gains).
    #[arg(long)]
    keep_batch_norm: bool,
    /// Batch sizes to measure.
    #[arg(long, value_delimiter = ',', default_value = "1,2,16,32,64,128")]
    batch_sizes: Vec<i64>,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    if args.torch_threads > 0 {
        tch::set_num_threads(args.torch_threads);
    }
    let device = select_device(args.device).map_err(anyhow::Error::msg)?;
    let model = if args.keep_batch_norm {
        load_model_unfolded(&args.model_dir, device)?
    } else {
        load_model(&args.model_dir, device)?
    };
    let arch = &model.card.architecture;
    println!(
        "model {} on {}, {} torch threads, {:.0} s per batch size",
        model.card.name,
        device_label(device),
        tch::get_num_threads(),
        args.seconds
    );
    println!("{:>6} {:>14} {:>16}", "batch", "images/s", "ms per batch");
    let budget = Duration::from_secs_f64(args.seconds);
    for &size in &args.batch_sizes {
        // Random inputs: the forward pass costs the same whatever the pixels are.
        let batch = Tensor::rand(
            [size, arch.in_channels, arch.height, arch.width],
            (Kind::Float, tch::Device::Cpu),
        );
        // Warm up allocations and kernel choices for this shape before timing it.
        for _ in 0..3 {
            sync(&model.embed(&batch));
        }
        let start = Instant::now();
        let mut passes = 0u64;
        while start.elapsed() < budget {
            sync(&model.embed(&batch));
            passes += 1;
        }
        let secs = start.elapsed().as_secs_f64();
        println!(
            "{:>6} {:>14.0} {:>16.3}",
            size,
            (passes as f64 * size as f64) / secs,
            secs * 1000.0 / passes as f64
        );
    }
    Ok(())
}

/// Copies the result to the host, which waits for the device: what a worker does before replying.
fn sync(embeddings: &Tensor) {
    let _ = embeddings.to_device(tch::Device::Cpu);
}
