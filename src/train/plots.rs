//! The report's PNG plots: loss per epoch, distance histograms, the ROC curve, and a grid of test pairs.

use std::path::Path;

use anyhow::{Context, Result};
use plotters::coord::types::RangedCoordf64;
use plotters::prelude::*;
use tch::Tensor;

use super::metrics::roc_curve;
use super::pairs::Pair;
use super::supervised::trainer::EpochStats;

const SIZE: (u32, u32) = (800, 500);

/// Renders into an RGB buffer with plotters, then writes a PNG with the `image` crate.
pub(super) fn save_png(
    path: &Path,
    size: (u32, u32),
    draw: impl FnOnce(DrawingArea<BitMapBackend, plotters::coord::Shift>) -> Result<()>,
) -> Result<()> {
    let mut buffer = vec![0u8; (size.0 * size.1 * 3) as usize];
    {
        let root = BitMapBackend::with_buffer(&mut buffer, size).into_drawing_area();
        root.fill(&WHITE).map_err(|e| anyhow::anyhow!("{e}"))?;
        draw(root.clone())?;
        root.present().map_err(|e| anyhow::anyhow!("{e}"))?;
    }
    image::RgbImage::from_raw(size.0, size.1, buffer)
        .context("plot buffer size")?
        .save(path)
        .with_context(|| format!("writing {}", path.display()))
}

pub(super) fn plot_err<E: std::fmt::Display>(e: E) -> anyhow::Error {
    anyhow::anyhow!("plotting: {e}")
}

type Chart<'a, 'b> = ChartContext<'a, BitMapBackend<'b>, Cartesian2d<RangedCoordf64, RangedCoordf64>>;

/// Draws a vertical line at `x` with its legend entry, then the legend box: how the line charts end.
fn finish_with_marker<'a, 'b: 'a>(
    chart: &mut Chart<'a, 'b>,
    x: f64,
    top: f64,
    label: String,
    style: ShapeStyle,
) -> Result<()> {
    chart
        .draw_series(std::iter::once(PathElement::new(vec![(x, 0.0), (x, top)], style)))
        .map_err(plot_err)?
        .label(label)
        .legend(move |(lx, ly)| PathElement::new(vec![(lx, ly), (lx + 20, ly)], style));
    chart
        .configure_series_labels()
        .border_style(BLACK)
        .background_style(WHITE)
        .draw()
        .map_err(plot_err)
}

/// Training and validation loss per epoch, with the kept epoch marked.
pub(crate) fn loss_curves(path: &Path, history: &[EpochStats], best_epoch: usize) -> Result<()> {
    save_png(path, SIZE, |root| {
        let top = history
            .iter()
            .flat_map(|h| [h.train_loss, h.validation_loss])
            .fold(0.0f64, f64::max)
            * 1.1;
        let mut chart = ChartBuilder::on(&root)
            .caption("Contrastive loss per epoch", ("sans-serif", 24))
            .margin(15)
            .x_label_area_size(40)
            .y_label_area_size(60)
            .build_cartesian_2d(1f64..history.len().max(2) as f64, 0f64..top.max(1e-3))
            .map_err(plot_err)?;
        chart
            .configure_mesh()
            .x_desc("epoch")
            .y_desc("loss")
            .draw()
            .map_err(plot_err)?;
        for (name, color, pick) in [
            ("train", BLUE, (|h: &EpochStats| h.train_loss) as fn(&EpochStats) -> f64),
            ("validation", RED, |h: &EpochStats| h.validation_loss),
        ] {
            chart
                .draw_series(LineSeries::new(
                    history.iter().map(|h| (h.epoch as f64, pick(h))),
                    color.stroke_width(2),
                ))
                .map_err(plot_err)?
                .label(name)
                .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(2)));
        }
        finish_with_marker(
            &mut chart,
            best_epoch as f64,
            top,
            format!("kept epoch {best_epoch}"),
            BLACK.mix(0.4).stroke_width(1),
        )
    })
}

/// Histograms of similar and dissimilar test distances, with the decision threshold drawn.
pub(crate) fn distance_histogram(path: &Path, distances: &[f64], similar: &[bool], threshold: f64) -> Result<()> {
    const BINS: usize = 60;
    let top_d = distances.iter().copied().fold(threshold, f64::max) * 1.05;
    let width = top_d / BINS as f64;
    let count = |want: bool| {
        let mut bins = vec![0u32; BINS];
        for (&d, &s) in distances.iter().zip(similar) {
            if s == want {
                bins[((d / width) as usize).min(BINS - 1)] += 1;
            }
        }
        bins
    };
    let (same, different) = (count(true), count(false));
    let peak = same.iter().chain(&different).copied().max().unwrap_or(1) as f64 * 1.1;
    save_png(path, SIZE, |root| {
        let mut chart = ChartBuilder::on(&root)
            .caption("Test pair distances", ("sans-serif", 24))
            .margin(15)
            .x_label_area_size(40)
            .y_label_area_size(60)
            .build_cartesian_2d(0f64..top_d, 0f64..peak)
            .map_err(plot_err)?;
        chart
            .configure_mesh()
            .x_desc("distance")
            .y_desc("pairs")
            .draw()
            .map_err(plot_err)?;
        for (name, color, bins) in [("similar", BLUE, &same), ("dissimilar", RED, &different)] {
            chart
                .draw_series(bins.iter().enumerate().map(|(i, &n)| {
                    let x = i as f64 * width;
                    Rectangle::new([(x, 0.0), (x + width, f64::from(n))], color.mix(0.45).filled())
                }))
                .map_err(plot_err)?
                .label(name)
                .legend(move |(x, y)| Rectangle::new([(x, y - 5), (x + 15, y + 5)], color.mix(0.45).filled()));
        }
        finish_with_marker(
            &mut chart,
            threshold,
            peak,
            format!("threshold {threshold:.3}"),
            BLACK.stroke_width(2),
        )
    })
}

/// The ROC curve of the test pairs.
pub(crate) fn roc(path: &Path, distances: &[f64], similar: &[bool], auc: f64) -> Result<()> {
    let curve = roc_curve(distances, similar);
    save_png(path, (600, 600), |root| {
        let mut chart = ChartBuilder::on(&root)
            .caption(format!("ROC (AUC {auc:.4})"), ("sans-serif", 24))
            .margin(15)
            .x_label_area_size(40)
            .y_label_area_size(60)
            .build_cartesian_2d(0f64..1f64, 0f64..1.0001f64)
            .map_err(plot_err)?;
        chart
            .configure_mesh()
            .x_desc("false accept rate")
            .y_desc("true accept rate")
            .draw()
            .map_err(plot_err)?;
        chart
            .draw_series(LineSeries::new(
                curve.iter().map(|p| (p.far, p.tar)),
                BLUE.stroke_width(2),
            ))
            .map_err(plot_err)?;
        chart
            .draw_series(LineSeries::new([(0.0, 0.0), (1.0, 1.0)], BLACK.mix(0.3)))
            .map_err(plot_err)?;
        Ok(())
    })
}

/// A grid of test pairs side by side with their distance and the decision, as the seed's
/// `visualize_results` shows; wrong decisions are captioned in red.
pub(crate) fn pair_grid(path: &Path, images: &Tensor, pairs: &[Pair], distances: &[f64], threshold: f64) -> Result<()> {
    const COLS: usize = 4;
    const ROWS: usize = 5;
    const SCALE: i32 = 4;
    let (h, w) = (images.size()[2], images.size()[3]);
    // Two images with a small gap, then a wide gap before the next pair.
    let (gap, pair_gap) = (2, 10);
    let cell = ((2 * w as i32 + gap + pair_gap) * SCALE, h as i32 * SCALE + 28);
    let size = ((cell.0 * COLS as i32) as u32, (cell.1 * ROWS as i32) as u32);
    save_png(path, size, |root| {
        // Pairs spread evenly over the list, so that every class shows, in (positive, negative) steps.
        let shown = (COLS * ROWS / 2).min(pairs.len() / 2);
        let picks = (0..shown).flat_map(|k| {
            let first = 2 * (k * (pairs.len() / 2) / shown.max(1));
            [first, first + 1]
        });
        for (k, i) in picks.enumerate() {
            let (pair, d) = (&pairs[i], distances[i]);
            let (x0, y0) = ((k % COLS) as i32 * cell.0, (k / COLS) as i32 * cell.1);
            for (side, index) in [pair.a, pair.b].into_iter().enumerate() {
                // Show the first channel, min-max scaled, whatever the normalisation.
                let img = images.get(index as i64).get(0);
                let (lo, hi) = (
                    f64::try_from(img.min()).unwrap_or(0.0),
                    f64::try_from(img.max()).unwrap_or(1.0),
                );
                let pixels = Vec::<f32>::try_from(img.flatten(0, -1)).unwrap_or_default();
                let left = x0 + side as i32 * (w as i32 + gap) * SCALE;
                for (i, &v) in pixels.iter().enumerate() {
                    let shade = (((f64::from(v) - lo) / (hi - lo).max(1e-6)) * 255.0) as u8;
                    let (px, py) = (left + (i as i64 % w) as i32 * SCALE, y0 + (i as i64 / w) as i32 * SCALE);
                    root.draw(&Rectangle::new(
                        [(px, py), (px + SCALE, py + SCALE)],
                        RGBColor(shade, shade, shade).filled(),
                    ))
                    .map_err(plot_err)?;
                }
            }
            let predicted = d < threshold;
            let color = if predicted == pair.similar { BLACK } else { RED };
            let verdict = if predicted { "same" } else { "different" };
            root.draw(&Text::new(
                format!("d={d:.3} {verdict}"),
                (x0 + 4, y0 + h as i32 * SCALE + 6),
                ("sans-serif", 16).into_font().color(&color),
            ))
            .map_err(plot_err)?;
        }
        Ok(())
    })
}
