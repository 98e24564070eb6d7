//! Line charts written as PNG and SVG: learning curves, the depth sweep,
//! weight histograms.

use std::path::{Path, PathBuf};
use std::sync::Once;

use plotters::prelude::*;
use plotters::style::FontStyle;
use recipe_train::{TrainError, write_atomic};

/// DejaVu Sans (see `assets/fonts/LICENSE`), embedded so that PNG text
/// renders the same on every machine, with no system font lookup.
static FONT: &[u8] = include_bytes!("../assets/fonts/DejaVuSans.ttf");
static REGISTER_FONT: Once = Once::new();

const SIZE: (u32, u32) = (900, 560);

/// One line of a chart.
#[derive(Debug, Clone, PartialEq)]
pub struct Series {
    /// Its name in the legend.
    pub name: String,
    /// `(x, y)` points, in order.
    pub points: Vec<(f64, f64)>,
    /// Dashed instead of solid (e.g. training curves next to validation ones).
    pub dashed: bool,
    /// Palette index; `None` takes the series' position in the chart.
    pub color: Option<usize>,
    /// Whether the series has an entry in the legend.
    pub in_legend: bool,
    /// Draw each point as a circle instead of joining them with a line.
    pub markers: bool,
}

impl Series {
    /// A solid line.
    pub fn new(name: impl Into<String>, points: Vec<(f64, f64)>) -> Self {
        Self {
            name: name.into(),
            points,
            dashed: false,
            color: None,
            in_legend: true,
            markers: false,
        }
    }

    /// The same line, dashed.
    pub fn dashed(mut self) -> Self {
        self.dashed = true;
        self
    }

    /// The same line in palette colour `index` (to pair lines of one variant).
    pub fn colored(mut self, index: usize) -> Self {
        self.color = Some(index);
        self
    }

    /// The same points as circles, not a line.
    pub fn markers(mut self) -> Self {
        self.markers = true;
        self
    }

    /// The same line, left out of the legend.
    pub fn unlabelled(mut self) -> Self {
        self.in_legend = false;
        self
    }
}

/// A line chart with a title, labelled axes and a legend.
#[derive(Debug, Clone, PartialEq)]
pub struct LineChart {
    /// Title above the plot.
    pub title: String,
    /// Label of the x axis.
    pub x_label: String,
    /// Label of the y axis.
    pub y_label: String,
    /// The lines.
    pub series: Vec<Series>,
}

impl LineChart {
    /// An empty chart.
    pub fn new(
        title: impl Into<String>,
        x_label: impl Into<String>,
        y_label: impl Into<String>,
    ) -> Self {
        Self {
            title: title.into(),
            x_label: x_label.into(),
            y_label: y_label.into(),
            series: Vec::new(),
        }
    }

    /// Adds a line.
    pub fn with(mut self, series: Series) -> Self {
        self.series.push(series);
        self
    }

    fn bounds(&self) -> ((f64, f64), (f64, f64)) {
        let points = self
            .series
            .iter()
            .flat_map(|s| s.points.iter())
            .filter(|(x, y)| x.is_finite() && y.is_finite());
        let (mut x0, mut x1, mut y0, mut y1) = (f64::MAX, f64::MIN, f64::MAX, f64::MIN);
        for &(x, y) in points {
            (x0, x1, y0, y1) = (x0.min(x), x1.max(x), y0.min(y), y1.max(y));
        }
        if x0 > x1 {
            return ((0.0, 1.0), (0.0, 1.0));
        }
        let pad = |lo: f64, hi: f64| {
            let span = if hi > lo { hi - lo } else { lo.abs().max(1.0) };
            (lo - 0.05 * span, hi + 0.05 * span)
        };
        (pad(x0, x1), pad(y0, y1))
    }

    fn draw<DB: DrawingBackend>(
        &self,
        root: DrawingArea<DB, plotters::coord::Shift>,
    ) -> Result<(), String>
    where
        DB::ErrorType: 'static,
    {
        let error = |e: &dyn std::fmt::Display| e.to_string();
        root.fill(&WHITE).map_err(|e| error(&e))?;
        let ((x0, x1), (y0, y1)) = self.bounds();
        let mut chart = ChartBuilder::on(&root)
            .caption(&self.title, ("sans-serif", 24))
            .margin(16)
            .x_label_area_size(48)
            .y_label_area_size(72)
            .build_cartesian_2d(x0..x1, y0..y1)
            .map_err(|e| error(&e))?;
        chart
            .configure_mesh()
            .x_desc(&self.x_label)
            .y_desc(&self.y_label)
            .label_style(("sans-serif", 16))
            .axis_desc_style(("sans-serif", 18))
            .draw()
            .map_err(|e| error(&e))?;
        for (index, series) in self.series.iter().enumerate() {
            let color = Palette99::pick(series.color.unwrap_or(index)).to_rgba();
            let style = ShapeStyle::from(color).stroke_width(2);
            let points = series
                .points
                .iter()
                .copied()
                .filter(|(x, y)| x.is_finite() && y.is_finite());
            let drawn = if series.markers {
                chart.draw_series(
                    points
                        .map(|point| Circle::new(point, 6, style.filled()))
                        .collect::<Vec<_>>(),
                )
            } else if series.dashed {
                chart.draw_series(DashedLineSeries::new(points, 8, 5, style))
            } else {
                chart.draw_series(LineSeries::new(points, style))
            };
            let drawn = drawn.map_err(|e| error(&e))?;
            if series.in_legend {
                drawn
                    .label(series.name.clone())
                    .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 24, y)], style));
            }
        }
        chart
            .configure_series_labels()
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK)
            .label_font(("sans-serif", 15))
            .position(SeriesLabelPosition::UpperRight)
            .draw()
            .map_err(|e| error(&e))?;
        root.present().map_err(|e| error(&e))?;
        Ok(())
    }

    /// Writes `<stem>.svg` and `<stem>.png`, each atomically.
    pub fn write(&self, stem: &Path) -> Result<(), TrainError> {
        REGISTER_FONT.call_once(|| {
            // The bytes are a valid TrueType font checked in with the code.
            let _ = plotters::style::register_font("sans-serif", FontStyle::Normal, FONT);
        });
        let svg_path = with_extension(stem, "svg");
        let mut svg = String::new();
        self.draw(SVGBackend::with_string(&mut svg, SIZE).into_drawing_area())
            .map_err(|e| io_error(&svg_path, e))?;
        write_atomic(&svg_path, svg.as_bytes())?;

        let png_path = with_extension(stem, "png");
        let mut tmp = png_path.clone();
        tmp.set_file_name(format!(
            ".{}.{}.tmp.png",
            png_path
                .file_stem()
                .and_then(|s| s.to_str())
                .unwrap_or("plot"),
            std::process::id()
        ));
        if let Some(dir) = png_path.parent() {
            std::fs::create_dir_all(dir).map_err(|e| io_error(dir, e))?;
        }
        self.draw(BitMapBackend::new(&tmp, SIZE).into_drawing_area())
            .map_err(|e| io_error(&png_path, e))?;
        std::fs::rename(&tmp, &png_path).map_err(|e| io_error(&png_path, e))
    }
}

fn io_error(path: &Path, error: impl std::fmt::Display) -> TrainError {
    TrainError::Io {
        path: path.to_path_buf(),
        reason: error.to_string().into(),
    }
}

fn with_extension(stem: &Path, extension: &str) -> PathBuf {
    let mut path = stem.as_os_str().to_owned();
    path.push(".");
    path.push(extension);
    PathBuf::from(path)
}

/// A histogram of `values` over `bins` equal bins of `range`, as the share
/// of values per bin at each bin's centre (values outside are left out).
pub fn histogram(values: &[f32], range: (f64, f64), bins: usize) -> Vec<(f64, f64)> {
    let (lo, hi) = range;
    let width = (hi - lo) / bins as f64;
    let mut counts = vec![0usize; bins];
    for &v in values {
        let v = v as f64;
        if v >= lo && v < hi {
            counts[(((v - lo) / width) as usize).min(bins - 1)] += 1;
        }
    }
    let total = values.len().max(1) as f64;
    counts
        .iter()
        .enumerate()
        .map(|(i, &c)| (lo + (i as f64 + 0.5) * width, c as f64 / total))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histogram_counts_shares_per_bin() {
        let h = histogram(&[-0.9, -0.1, 0.1, 0.2, 0.9, 5.0], (-1.0, 1.0), 4);
        let shares: Vec<f64> = h.iter().map(|&(_, s)| s).collect();
        assert_eq!(shares, vec![1.0 / 6.0, 1.0 / 6.0, 2.0 / 6.0, 1.0 / 6.0]);
        assert_eq!(h[0].0, -0.75);
    }

    #[test]
    fn charts_are_written_as_png_and_svg() {
        let dir = std::env::temp_dir().join(format!("recipe-plot-{}", std::process::id()));
        let chart = LineChart::new("valid loss", "epoch", "loss")
            .with(Series::new(
                "plain",
                vec![(1.0, 0.5), (2.0, 0.3), (3.0, 0.35)],
            ))
            .with(Series::new("train", vec![(1.0, 0.6), (2.0, 0.2), (3.0, 0.1)]).dashed());
        chart.write(&dir.join("curves")).unwrap();
        let png = std::fs::read(dir.join("curves.png")).unwrap();
        assert_eq!(&png[1..4], b"PNG");
        let svg = std::fs::read_to_string(dir.join("curves.svg")).unwrap();
        assert!(svg.contains("<svg") && svg.contains("valid loss") && svg.contains("plain"));
        let leftovers = std::fs::read_dir(&dir).unwrap().count();
        assert_eq!(leftovers, 2, "no temporary files left");
        std::fs::remove_dir_all(dir).unwrap();
    }
}
