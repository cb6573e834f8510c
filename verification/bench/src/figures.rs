//! Headline figures, kept for `--json FILE`: the correctness gate compares them with a
//! stored baseline, each with the margin stated here.

use std::sync::Mutex;

static FIGURES: Mutex<Vec<String>> = Mutex::new(Vec::new());

/// Keeps a cost figure (lower is better): `margin` is how much higher (a fraction) a later
/// run may be.
pub fn keep(name: &str, value: f64, unit: &str, margin: f64) {
    let line = serde_json::json!({
        "name": name, "value": value, "unit": unit, "better": "lower", "margin": margin,
    });
    if let Ok(mut figures) = FIGURES.lock() {
        figures.push(line.to_string());
    }
}

/// Writes every kept figure as a JSON array.
pub fn write(path: &str) -> std::io::Result<()> {
    let figures = FIGURES.lock().map(|f| f.join(",\n  ")).unwrap_or_default();
    std::fs::write(path, format!("[\n  {figures}\n]\n"))
}
