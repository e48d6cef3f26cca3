//! The HTML report of `simverify dedup --report DIR`: `index.html` with each cluster's thumbnails side
//! by side (largest clusters first), their distances and scores, and the histogram of every image's
//! distance to its nearest neighbour with the threshold drawn, where a threshold in a valley shows. It
//! is self-contained: the thumbnails sit beside it in `thumbs/`, and nothing refers to the network.

use std::fmt::Write as _;
use std::path::Path;

use anyhow::Context;

use super::findings::DuplicateCluster;

/// Clusters drawn with thumbnails; the JSON has them all.
const REPORT_CLUSTERS: usize = 300;

/// Longest side of a thumbnail, in pixels.
const THUMB_SIDE: u32 = 160;

/// Histogram bars.
const BINS: usize = 60;

/// Writes `dir/index.html` and `dir/thumbs/` for `clusters` of the images under `root`.
pub(crate) fn write(
    dir: &Path,
    root: &Path,
    clusters: &[DuplicateCluster],
    nearest: &[f32],
    threshold: f32,
    model: &str,
) -> anyhow::Result<()> {
    let thumbs = dir.join("thumbs");
    std::fs::create_dir_all(&thumbs).with_context(|| format!("cannot create {}", thumbs.display()))?;
    let mut html = String::new();
    let shown = clusters.len().min(REPORT_CLUSTERS);
    let in_clusters: usize = clusters.iter().map(|c| c.size).sum();
    write!(
        html,
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>Duplicates: {}</title>\n<style>{STYLE}</style></head><body>\n\
         <h1>Duplicate clusters</h1>\n<p>{} clusters holding {} images, model <b>{}</b>, threshold {threshold}.{}</p>\n",
        escape(&root.display().to_string()),
        clusters.len(),
        in_clusters,
        escape(model),
        if shown < clusters.len() {
            format!(" The {shown} largest are shown; the JSON has every one.")
        } else {
            String::new()
        }
    )?;
    html.push_str("<h2>Distance to the nearest other image</h2>\n");
    html.push_str(&histogram(nearest, threshold));
    let mut thumb = 0usize;
    for (number, cluster) in clusters.iter().take(shown).enumerate() {
        write!(
            html,
            "<section><h3>Cluster {} ({} images)</h3><div class=\"row\">",
            number + 1,
            cluster.size
        )?;
        for (at, member) in cluster.members.iter().enumerate() {
            let path = member.path.as_deref().unwrap_or_default();
            thumb += 1;
            let name = format!("{thumb}.jpg");
            let img = match thumbnail(&root.join(path), &thumbs.join(&name)) {
                Ok(()) => format!("<img src=\"thumbs/{name}\" alt=\"\" loading=\"lazy\">"),
                Err(err) => format!("<div class=\"missing\">{}</div>", escape(&err.to_string())),
            };
            let size = match (member.width, member.height) {
                (Some(w), Some(h)) => format!("{w}×{h}"),
                _ => String::new(),
            };
            let role = if at == 0 {
                "representative".to_string()
            } else {
                format!("distance {:.3}, score {:.3}", member.distance, member.score)
            };
            write!(
                html,
                "<figure class=\"{}\">{img}<figcaption>{}<br>{size}<br>{role}</figcaption></figure>",
                if at == 0 { "first" } else { "" },
                escape(path)
            )?;
        }
        html.push_str("</div></section>\n");
    }
    html.push_str("</body></html>\n");
    let index = dir.join("index.html");
    std::fs::write(&index, html).with_context(|| format!("cannot write {}", index.display()))?;
    Ok(())
}

const STYLE: &str = "body{font:14px system-ui,sans-serif;margin:2em;color:#222}\
section{margin:1.5em 0;border-top:1px solid #ddd}\
.row{display:flex;flex-wrap:wrap;gap:12px}\
figure{margin:0;width:170px}\
figure img{max-width:160px;max-height:160px;display:block;border:1px solid #ccc}\
figure.first img{border:3px solid #2a7}\
figcaption{font-size:12px;word-break:break-all}\
.missing{width:160px;height:60px;background:#eee;font-size:11px}\
svg text{font-size:11px}";

/// A thumbnail of `source` at `target`, at most `THUMB_SIDE` on its longer side.
fn thumbnail(source: &Path, target: &Path) -> anyhow::Result<()> {
    let image = image::ImageReader::open(source)?.with_guessed_format()?.decode()?;
    let small = image.thumbnail(THUMB_SIDE, THUMB_SIDE).to_rgb8();
    small.save_with_format(target, image::ImageFormat::Jpeg)?;
    Ok(())
}

/// An inline SVG histogram of the finite `distances`, with the threshold as a red line.
fn histogram(distances: &[f32], threshold: f32) -> String {
    let finite: Vec<f32> = distances.iter().copied().filter(|d| d.is_finite()).collect();
    if finite.is_empty() {
        return "<p>No image has a neighbour.</p>\n".to_string();
    }
    let top = finite.iter().copied().fold(threshold * 1.5, f32::max);
    let mut counts = [0usize; BINS];
    for d in &finite {
        let bin = ((d / top) * BINS as f32) as usize;
        counts[bin.min(BINS - 1)] += 1;
    }
    let most = *counts.iter().max().unwrap_or(&1) as f32;
    let (width, height, left, bottom) = (640.0, 200.0, 40.0, 24.0);
    let plot_w = width - left - 10.0;
    let plot_h = height - bottom - 10.0;
    let bar = plot_w / BINS as f32;
    let mut svg = format!(
        "<svg width=\"{width}\" height=\"{height}\" role=\"img\" aria-label=\"histogram of nearest-neighbour distances\">\n"
    );
    for (i, &count) in counts.iter().enumerate() {
        let h = plot_h * count as f32 / most;
        let _ = write!(
            svg,
            "<rect x=\"{:.1}\" y=\"{:.1}\" width=\"{:.1}\" height=\"{h:.1}\" fill=\"#69c\"><title>{count}</title></rect>",
            left + i as f32 * bar,
            10.0 + plot_h - h,
            bar - 1.0
        );
    }
    let x = left + plot_w * threshold / top;
    let _ = write!(
        svg,
        "<line x1=\"{x:.1}\" x2=\"{x:.1}\" y1=\"10\" y2=\"{:.1}\" stroke=\"#d22\" stroke-width=\"2\"/>\
         <text x=\"{:.1}\" y=\"22\" fill=\"#d22\">threshold {threshold}</text>\
         <text x=\"{left}\" y=\"{:.1}\">0</text><text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\">{top:.2}</text>\
         <text x=\"4\" y=\"20\">{}</text></svg>",
        10.0 + plot_h,
        x + 4.0,
        height - 6.0,
        left + plot_w,
        height - 6.0,
        most as usize
    );
    svg.push('\n');
    svg
}

/// Text safe inside HTML.
fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}
