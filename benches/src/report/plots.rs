//! The SVG plots of the report, which its sections link to.
//!
//! - `handoff_latency.svg`: p50 hand-off latency against waiters, one line per implementation,
//!   with the default lock's target of [`HANDOFF_MAX_ROUND_TRIPS`] round trips (the fair lock's
//!   is stricter, and stated in the report's table);
//! - `commands_per_acquisition.svg`: client commands per acquisition against waiters, with the
//!   default lock's target of [`COMMANDS_PER_ACQUISITION_MAX`];
//! - `uncontended_latency.svg`: the latency distribution of scenario 1, floor included.

use std::path::Path;

use plotters::prelude::*;

use super::thresholds::{COMMANDS_PER_ACQUISITION_MAX, HANDOFF_MAX_ROUND_TRIPS};
use crate::{
    BenchError, BenchResult,
    contenders::Implementation,
    results::{ContentionResult, LatencyResult, Results},
};

/// File name of the hand-off latency plot.
pub const HANDOFF_SVG: &str = "handoff_latency.svg";
/// File name of the commands-per-acquisition plot.
pub const COMMANDS_SVG: &str = "commands_per_acquisition.svg";
/// File name of the uncontended latency histogram.
pub const LATENCY_SVG: &str = "uncontended_latency.svg";

const SIZE: (u32, u32) = (900, 540);
const FONT: &str = "sans-serif";
const FLOOR_COLOR: RGBColor = RGBColor(120, 120, 120);

/// The colour of an implementation in every plot.
fn color(implementation: Implementation) -> RGBColor {
    match implementation {
        Implementation::Ours => RGBColor(31, 119, 180),
        Implementation::Fair => RGBColor(148, 103, 189),
        Implementation::SpinFixed => RGBColor(214, 39, 40),
        Implementation::SpinJitter => RGBColor(255, 127, 14),
        Implementation::Rslock => RGBColor(44, 160, 44),
    }
}

fn plot_error(err: impl std::fmt::Display) -> BenchError {
    format!("drawing a plot: {err}").into()
}

/// Draws every plot whose scenario was measured into `dir`.
///
/// # Errors
///
/// When a file cannot be written.
pub fn draw_all(results: &Results, dir: &Path) -> BenchResult<()> {
    if let Some(contention) = &results.contention {
        let round_trip = results.latency.as_ref().map(LatencyResult::round_trip_ns);
        handoff(contention, round_trip, &dir.join(HANDOFF_SVG))?;
        commands(contention, &dir.join(COMMANDS_SVG))?;
    }
    if let Some(latency) = &results.latency {
        histogram(latency, &dir.join(LATENCY_SVG))?;
    }
    Ok(())
}

fn format_waiters(value: &f64) -> String {
    format!("{value:.0}")
}

fn format_micros(value: &f64) -> String {
    if *value >= 1_000.0 {
        let ms = value / 1_000.0;
        if (ms - ms.round()).abs() < 0.05 {
            format!("{ms:.0} ms")
        } else {
            format!("{ms:.1} ms")
        }
    } else if *value >= 1.0 {
        format!("{value:.0} µs")
    } else {
        format!("{value:.1} µs")
    }
}

/// 1, 2, 5 × powers of ten between `low` and `high`: the ticks of a log axis.
fn nice_ticks(low: f64, high: f64) -> Vec<f64> {
    let mut ticks = Vec::new();
    let mut decade = 10f64.powf(low.log10().floor());
    while decade <= high {
        for step in [1.0, 2.0, 5.0] {
            let tick = decade * step;
            if tick >= low && tick <= high {
                ticks.push(tick);
            }
        }
        decade *= 10.0;
    }
    ticks
}

/// One line per implementation against the waiter count, with a dashed reference line.
struct WaiterPlot<'a> {
    caption: String,
    y_desc: &'a str,
    log_y: bool,
    format_y: &'a dyn Fn(&f64) -> String,
    reference: Option<(f64, String)>,
    series: Vec<(Implementation, Vec<(f64, f64)>)>,
}

impl WaiterPlot<'_> {
    fn draw(self, contention: &ContentionResult, path: &Path) -> BenchResult<()> {
        let waiters: Vec<f64> = contention.waiters.iter().map(|&w| w as f64).collect();
        let max_waiters = waiters.iter().copied().fold(1.0, f64::max);
        let x_range = 0.75..max_waiters * 1.35;
        let ys = || {
            self.series
                .iter()
                .flat_map(|(_, points)| points.iter().map(|p| p.1))
                .chain(self.reference.as_ref().map(|r| r.0))
                .filter(|v| v.is_finite() && *v > 0.0)
        };
        let max = ys().fold(f64::MIN, f64::max).max(1e-9);
        let min = ys().fold(f64::MAX, f64::min).min(max);
        let root = SVGBackend::new(path, SIZE).into_drawing_area();
        root.fill(&WHITE).map_err(plot_error)?;
        let mut builder = ChartBuilder::on(&root);
        builder
            .caption(&self.caption, (FONT, 22))
            .margin(16)
            .x_label_area_size(48)
            .y_label_area_size(80);
        let x = x_range.clone().log_scale().with_key_points(waiters);
        // Head room above the data for the legend.
        if self.log_y {
            let (low, high) = (min / 1.5, max * 5.0);
            let y = (low..high)
                .log_scale()
                .with_key_points(nice_ticks(low, high));
            let chart = builder.build_cartesian_2d(x, y).map_err(plot_error)?;
            self.finish(chart, x_range)?;
        } else {
            let chart = builder
                .build_cartesian_2d(x, 0.0..max * 1.45)
                .map_err(plot_error)?;
            self.finish(chart, x_range)?;
        }
        root.present().map_err(plot_error)?;
        Ok(())
    }

    fn finish<'b, X, Y>(
        self,
        mut chart: ChartContext<'b, SVGBackend<'b>, Cartesian2d<X, Y>>,
        x_range: std::ops::Range<f64>,
    ) -> BenchResult<()>
    where
        X: Ranged<ValueType = f64> + plotters::coord::ranged1d::ValueFormatter<f64>,
        Y: Ranged<ValueType = f64> + plotters::coord::ranged1d::ValueFormatter<f64>,
    {
        chart
            .configure_mesh()
            .x_desc("waiters (tasks waiting while one holds the lock; log scale)")
            .y_desc(self.y_desc)
            .x_label_formatter(&format_waiters)
            .y_labels(12)
            .y_label_formatter(self.format_y)
            .label_style((FONT, 14))
            .max_light_lines(4)
            .draw()
            .map_err(plot_error)?;
        if let Some((value, label)) = self.reference {
            let style = ShapeStyle::from(&FLOOR_COLOR).stroke_width(2);
            chart
                .draw_series(DashedLineSeries::new(
                    vec![(x_range.start, value), (x_range.end, value)],
                    8,
                    6,
                    style,
                ))
                .map_err(plot_error)?
                .label(label)
                .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 24, y)], style));
        }
        for (implementation, points) in &self.series {
            let color = color(*implementation);
            chart
                .draw_series(LineSeries::new(points.clone(), color.stroke_width(3)))
                .map_err(plot_error)?
                .label(implementation.name())
                .legend(move |(x, y)| {
                    PathElement::new(vec![(x, y), (x + 24, y)], color.stroke_width(3))
                });
            chart
                .draw_series(
                    points
                        .iter()
                        .map(|&point| Circle::new(point, 4, color.filled())),
                )
                .map_err(plot_error)?;
        }
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::UpperLeft)
            .label_font((FONT, 15))
            .background_style(WHITE.mix(0.9))
            .border_style(BLACK)
            .draw()
            .map_err(plot_error)?;
        Ok(())
    }
}

fn by_implementation(
    contention: &ContentionResult,
    value: impl Fn(&crate::results::ContentionPoint) -> Option<f64>,
) -> Vec<(Implementation, Vec<(f64, f64)>)> {
    Implementation::ALL
        .into_iter()
        .map(|implementation| {
            let points = contention
                .points
                .iter()
                .filter(|point| point.implementation == implementation)
                .filter_map(|point| Some((point.waiters as f64, value(point)?)))
                .collect::<Vec<_>>();
            (implementation, points)
        })
        .filter(|(_, points)| !points.is_empty())
        .collect()
}

fn handoff(
    contention: &ContentionResult,
    round_trip_ns: Option<f64>,
    path: &Path,
) -> BenchResult<()> {
    WaiterPlot {
        caption: format!(
            "Contended hand-off latency, p50 ({} processes)",
            contention.processes
        ),
        y_desc: "holder's release → next holder's acquire (log scale)",
        log_y: true,
        format_y: &format_micros,
        reference: round_trip_ns.map(|rt| {
            (
                HANDOFF_MAX_ROUND_TRIPS * rt / 1_000.0,
                format!("target of ours: {HANDOFF_MAX_ROUND_TRIPS} round trips"),
            )
        }),
        series: by_implementation(contention, |point| {
            point.handoff.map(|h| h.p50_ns as f64 / 1_000.0)
        }),
    }
    .draw(contention, path)
}

fn commands(contention: &ContentionResult, path: &Path) -> BenchResult<()> {
    WaiterPlot {
        caption: format!(
            "Redis commands per acquisition under contention ({} processes)",
            contention.processes
        ),
        y_desc: "client-sent commands per acquisition",
        log_y: false,
        format_y: &|value| format!("{value:.0}"),
        reference: Some((
            COMMANDS_PER_ACQUISITION_MAX,
            format!("target of ours: at most {COMMANDS_PER_ACQUISITION_MAX}"),
        )),
        series: by_implementation(contention, |point| {
            (point.acquisitions > 0).then_some(point.client_commands_per_acquisition)
        }),
    }
    .draw(contention, path)
}

/// One line of the histogram plot: label, colour, width, points.
type Curve = (String, RGBColor, u32, Vec<(f64, f64)>);

fn histogram(latency: &LatencyResult, path: &Path) -> BenchResult<()> {
    // Peers first, then the floor, then lock-runtime's locks, ours on top.
    let mut all: Vec<_> = std::iter::once(&latency.floor)
        .chain(&latency.series)
        .collect();
    all.sort_by_key(|series| match series.implementation {
        Some(Implementation::Ours) => 3,
        Some(Implementation::Fair) => 2,
        None => 1,
        Some(_) => 0,
    });
    // Show the body of the distributions: up to 1.4× the largest p99, at least 2.8× the floor's p50.
    let x_max_us = all
        .iter()
        .map(|series| series.latency.p99_ns as f64 / 1_000.0)
        .fold(
            2.0 * latency.floor.latency.p50_ns as f64 / 1_000.0,
            f64::max,
        )
        * 1.4;
    let x_min_us = all
        .iter()
        .map(|series| series.latency.p50_ns as f64 / 1_000.0)
        .fold(f64::MAX, f64::min)
        / 1.5;
    let curves: Vec<Curve> = all
        .iter()
        .map(|series| {
            let total = series.latency.count.max(1) as f64;
            let points = series
                .buckets
                .iter()
                .map(|bucket| {
                    (
                        bucket.upper_ns as f64 / 1_000.0,
                        100.0 * bucket.count as f64 / total,
                    )
                })
                .filter(|(x, _)| *x >= x_min_us && *x <= x_max_us)
                .collect();
            let (color, width) = match series.implementation {
                None => (FLOOR_COLOR, 3),
                Some(lock) if lock.is_family() => (color(lock), 3),
                Some(other) => (color(other), 2),
            };
            let label = match series.implementation {
                None => "floor: 2 × EVALSHA round trip".to_owned(),
                Some(implementation) => format!("{implementation}: acquire + release"),
            };
            (label, color, width, points)
        })
        .collect();
    let y_max = curves
        .iter()
        .flat_map(|(_, _, _, points)| points.iter().map(|p| p.1))
        .fold(1.0, f64::max)
        * 1.1;

    let root = SVGBackend::new(path, SIZE).into_drawing_area();
    root.fill(&WHITE).map_err(plot_error)?;
    let mut chart = ChartBuilder::on(&root)
        .caption("Uncontended latency distribution", (FONT, 22))
        .margin(16)
        .x_label_area_size(48)
        .y_label_area_size(70)
        .build_cartesian_2d(x_min_us..x_max_us, 0.0..y_max)
        .map_err(plot_error)?;
    chart
        .configure_mesh()
        .x_desc("acquire + release latency (bins 3 % wide)")
        .x_labels(12)
        .y_desc("% of samples per bin")
        .x_label_formatter(&format_micros)
        .y_label_formatter(&|value| format!("{value:.1} %"))
        .label_style((FONT, 14))
        .max_light_lines(4)
        .draw()
        .map_err(plot_error)?;
    for (label, color, width, points) in curves {
        chart
            .draw_series(LineSeries::new(points, color.stroke_width(width)))
            .map_err(plot_error)?
            .label(label)
            .legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 24, y)], color.stroke_width(width))
            });
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperRight)
        .label_font((FONT, 15))
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .draw()
        .map_err(plot_error)?;
    root.present().map_err(plot_error)?;
    Ok(())
}
