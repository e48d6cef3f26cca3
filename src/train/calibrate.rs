//! Platt scaling: fits `P(similar | d) = 1 / (1 + exp(a·d + b))` to labelled validation distances.

use crate::model::card::Calibration;

/// Fits by Newton's method on the log-loss, with Platt's smoothed targets so that a perfectly
/// separated set still gives finite coefficients.
pub(crate) fn fit_platt(distances: &[f64], similar: &[bool]) -> Calibration {
    let positives = similar.iter().filter(|&&s| s).count() as f64;
    let negatives = similar.len() as f64 - positives;
    let (hi, lo) = ((positives + 1.0) / (positives + 2.0), 1.0 / (negatives + 2.0));
    let targets: Vec<f64> = similar.iter().map(|&s| if s { hi } else { lo }).collect();
    let (mut a, mut b) = (1.0, 0.0);
    for _ in 0..100 {
        // Gradient and Hessian of the log-loss in (a, b); p is the predicted match probability.
        let (mut ga, mut gb, mut haa, mut hab, mut hbb) = (0.0, 0.0, 1e-9, 0.0, 1e-9);
        for (&d, &t) in distances.iter().zip(&targets) {
            let p = 1.0 / (1.0 + (a * d + b).exp());
            let residual = t - p; // d(loss)/dz with z = a·d + b
            ga += residual * d;
            gb += residual;
            let w = p * (1.0 - p);
            haa += w * d * d;
            hab += w * d;
            hbb += w;
        }
        let det = haa * hbb - hab * hab;
        if det.abs() < 1e-18 {
            break;
        }
        let (step_a, step_b) = ((hbb * ga - hab * gb) / det, (haa * gb - hab * ga) / det);
        a -= step_a;
        b -= step_b;
        if step_a.abs() < 1e-10 && step_b.abs() < 1e-10 {
            break;
        }
    }
    Calibration {
        method: "platt".into(),
        a,
        b,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recovers_known_coefficients() {
        // Labels drawn deterministically from a known logistic curve: P = 1 / (1 + exp(8d − 4)).
        let (a, b) = (8.0, -4.0);
        let mut distances = Vec::new();
        let mut similar = Vec::new();
        for i in 0..2000 {
            let d = f64::from(i % 100) / 100.0;
            let p = 1.0 / (1.0 + f64::exp(a * d + b));
            // A low-discrepancy sequence stands in for coin flips.
            similar.push((f64::from(i) * 0.618_033_988_7).fract() < p);
            distances.push(d);
        }
        let fitted = fit_platt(&distances, &similar);
        assert!((fitted.a - a).abs() < 0.8 && (fitted.b - b).abs() < 0.4, "{fitted:?}");
        assert!(fitted.score(0.1) > 0.9 && fitted.score(0.9) < 0.1);
    }

    #[test]
    fn separable_data_stays_finite_and_monotone() {
        let fitted = fit_platt(&[0.1, 0.2, 0.8, 0.9], &[true, true, false, false]);
        assert!(fitted.a.is_finite() && fitted.b.is_finite() && fitted.a > 0.0);
        assert!(fitted.score(0.1) > fitted.score(0.5) && fitted.score(0.5) > fitted.score(0.9));
    }
}
