//! The photo model's report plots: ROC against the perceptual hashes, TAR per edit family, and training rounds.

use std::path::Path;

use anyhow::Result;
use plotters::prelude::*;

use super::trainer::Round;
use crate::model::card::DetectorFigures;
use crate::train::metrics::roc_curve;
use crate::train::plots::{plot_err, save_png};

/// One colour per detector, the model first.
const COLORS: [RGBColor; 4] = [BLUE, RED, GREEN, MAGENTA];
/// The lowest false accept rate on the log axis; near-duplicate search lives between 1e-4 and 1e-2.
const FAR_FLOOR: f64 = 1e-5;

/// ROC curves of every detector on the same pairs, false accept rate on a log axis.
pub(crate) fn roc_against_baselines(path: &Path, curves: &[(&str, &[f64], &[bool])]) -> Result<()> {
    save_png(path, (800, 600), |root| {
        let mut chart = ChartBuilder::on(&root)
            .caption("ROC on held-out sources and their edits", ("sans-serif", 24))
            .margin(15)
            .x_label_area_size(40)
            .y_label_area_size(60)
            .build_cartesian_2d((FAR_FLOOR..1f64).log_scale(), 0f64..1.0001f64)
            .map_err(plot_err)?;
        chart
            .configure_mesh()
            .x_desc("false accept rate (log)")
            .y_desc("true accept rate")
            .draw()
            .map_err(plot_err)?;
        for (k, (name, distances, similar)) in curves.iter().enumerate() {
            let color = COLORS[k % COLORS.len()];
            let points = roc_curve(distances, similar)
                .into_iter()
                .map(|p| (p.far.max(FAR_FLOOR), p.tar))
                .collect::<Vec<_>>();
            chart
                .draw_series(LineSeries::new(points, color.stroke_width(2)))
                .map_err(plot_err)?
                .label(*name)
                .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(2)));
        }
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::LowerRight)
            .border_style(BLACK)
            .background_style(WHITE)
            .draw()
            .map_err(plot_err)
    })
}

/// Grouped bars: for every edit family, each detector's true accept rate at its own threshold.
pub(crate) fn tar_by_family(path: &Path, detectors: &[DetectorFigures]) -> Result<()> {
    let families: Vec<&String> = detectors
        .first()
        .map(|d| d.tar_by_family.keys().collect())
        .unwrap_or_default();
    let groups = families.len().max(1) as f64;
    let width = 1.0 / (detectors.len() as f64 + 1.0);
    save_png(path, (1100, 520), |root| {
        let mut chart = ChartBuilder::on(&root)
            .caption(
                "True accept rate per edit family, at each detector's threshold",
                ("sans-serif", 22),
            )
            .margin(15)
            .x_label_area_size(60)
            .y_label_area_size(50)
            .build_cartesian_2d(0f64..groups, 0f64..1.05f64)
            .map_err(plot_err)?;
        chart
            .configure_mesh()
            .disable_x_mesh()
            .x_labels(families.len() * 2 + 1)
            .x_label_formatter(&|x| {
                let centre = x - x.floor();
                let i = x.floor() as usize;
                match families.get(i) {
                    Some(name) if (centre - 0.5).abs() < 1e-6 => name.to_string(),
                    _ => String::new(),
                }
            })
            .y_desc("true accept rate")
            .draw()
            .map_err(plot_err)?;
        for (k, detector) in detectors.iter().enumerate() {
            let color = COLORS[k % COLORS.len()];
            let bars = families.iter().enumerate().map(|(i, family)| {
                let x0 = i as f64 + width * (k as f64 + 0.5);
                let tar = detector.tar_by_family[*family];
                Rectangle::new([(x0, 0.0), (x0 + width, tar)], color.filled())
            });
            chart
                .draw_series(bars)
                .map_err(plot_err)?
                .label(detector.detector.clone())
                .legend(move |(x, y)| Rectangle::new([(x, y - 5), (x + 12, y + 5)], color.filled()));
        }
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::UpperRight)
            .border_style(BLACK)
            .background_style(WHITE)
            .draw()
            .map_err(plot_err)
    })
}

/// Training loss and validation TAR at FAR 1e-3 at every validation, with the kept step marked.
pub(crate) fn training_rounds(path: &Path, history: &[Round], best_step: usize) -> Result<()> {
    let last = history.last().map_or(1, |r| r.step) as f64;
    let top_loss = history.iter().map(|r| r.train_loss).fold(1e-3, f64::max) * 1.1;
    save_png(path, (800, 500), |root| {
        let (left, right) = root.split_horizontally(400);
        for (area, title, top, pick) in [
            (
                &left,
                "training loss",
                top_loss,
                (|r: &Round| r.train_loss) as fn(&Round) -> f64,
            ),
            (&right, "validation TAR at FAR 1e-3", 1.0, |r: &Round| {
                r.validation_tar_at_far_1e_3
            }),
        ] {
            let mut chart = ChartBuilder::on(area)
                .caption(title, ("sans-serif", 20))
                .margin(10)
                .x_label_area_size(35)
                .y_label_area_size(50)
                .build_cartesian_2d(0f64..last, 0f64..top)
                .map_err(plot_err)?;
            chart.configure_mesh().x_desc("step").draw().map_err(plot_err)?;
            chart
                .draw_series(LineSeries::new(
                    history.iter().map(|r| (r.step as f64, pick(r))),
                    BLUE.stroke_width(2),
                ))
                .map_err(plot_err)?;
            chart
                .draw_series(std::iter::once(PathElement::new(
                    vec![(best_step as f64, 0.0), (best_step as f64, top)],
                    BLACK.mix(0.4).stroke_width(1),
                )))
                .map_err(plot_err)?;
        }
        Ok(())
    })
}
