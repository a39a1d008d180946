//! SVG plots (plotters, SVG backend): throughput by frame size and a latency distribution.

use crate::hist::LatencyHist;
use crate::rfc2544::SizeResult;
use plotters::prelude::*;
use std::path::Path;

fn err<E: std::fmt::Display>(e: E) -> String {
    format!("plot: {e}")
}

/// Throughput (Mpps) by mean frame size, one point per result.
///
/// # Errors
/// When the file cannot be written.
pub fn throughput_svg(path: &Path, title: &str, results: &[SizeResult]) -> Result<(), String> {
    let pts: Vec<(f64, f64)> = results.iter().map(|r| (r.mean_frame, r.throughput_pps / 1e6)).collect();
    let xmax = pts.iter().map(|p| p.0).fold(64.0, f64::max) * 1.05;
    let ymax = pts.iter().map(|p| p.1).fold(0.0, f64::max).max(1e-6) * 1.15;
    let root = SVGBackend::new(path, (800, 480)).into_drawing_area();
    root.fill(&WHITE).map_err(err)?;
    let mut chart = ChartBuilder::on(&root)
        .caption(title, ("sans-serif", 20))
        .margin(15)
        .x_label_area_size(40)
        .y_label_area_size(60)
        .build_cartesian_2d(0f64..xmax, 0f64..ymax)
        .map_err(err)?;
    chart
        .configure_mesh()
        .x_desc("frame size (bytes, FCS included)")
        .y_desc("zero-loss throughput (Mpps)")
        .draw()
        .map_err(err)?;
    chart.draw_series(LineSeries::new(pts.clone(), &BLUE)).map_err(err)?;
    chart.draw_series(pts.iter().map(|&p| Circle::new(p, 4, BLUE.filled()))).map_err(err)?;
    root.present().map_err(err)?;
    Ok(())
}

/// The cumulative latency distribution (percent of packets at or below each latency, µs).
///
/// # Errors
/// When the file cannot be written.
pub fn latency_svg(path: &Path, title: &str, hist: &LatencyHist) -> Result<(), String> {
    let total = hist.count().max(1) as f64;
    let mut acc = 0u64;
    let mut pts = Vec::new();
    for (lo, hi, c) in hist.buckets() {
        if pts.is_empty() {
            pts.push((lo as f64 / 1e3, 0.0));
        }
        acc += c;
        pts.push((hi as f64 / 1e3, acc as f64 * 100.0 / total));
    }
    let xmax = pts.last().map_or(1.0, |p| p.0).max(1e-3) * 1.05;
    let xmin = pts.first().map_or(0.0, |p| p.0);
    let root = SVGBackend::new(path, (800, 480)).into_drawing_area();
    root.fill(&WHITE).map_err(err)?;
    let mut chart = ChartBuilder::on(&root)
        .caption(title, ("sans-serif", 20))
        .margin(15)
        .x_label_area_size(40)
        .y_label_area_size(60)
        .build_cartesian_2d(xmin..xmax, 0f64..100.0)
        .map_err(err)?;
    chart.configure_mesh().x_desc("latency (us)").y_desc("packets at or below (%)").draw().map_err(err)?;
    chart.draw_series(LineSeries::new(pts, &RED)).map_err(err)?;
    root.present().map_err(err)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hist::LatencySummary;

    #[test]
    fn writes_svgs() {
        let d = tempfile::tempdir().unwrap();
        let mut h = LatencyHist::new();
        for v in [1000u64, 2000, 2500, 40_000] {
            h.record(v);
        }
        let r = |size: &str, m: f64, pps: f64| SizeResult {
            size: size.into(),
            mean_frame: m,
            throughput_pps: pps,
            throughput_mbps: 0.0,
            latency: LatencySummary::default(),
            generator_limited: false,
            trials: vec![],
            hist: None,
        };
        let t = d.path().join("t.svg");
        throughput_svg(&t, "tput", &[r("64", 64.0, 1e6), r("1518", 1518.0, 8e5)]).unwrap();
        let l = d.path().join("l.svg");
        latency_svg(&l, "lat", &h).unwrap();
        for p in [t, l] {
            let s = std::fs::read_to_string(p).unwrap();
            assert!(s.starts_with("<svg") && s.contains("polyline"), "{s:.200}");
        }
    }
}
