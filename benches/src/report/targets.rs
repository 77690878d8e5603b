//! The *Targets* section of `REPORT.md`: a table of every target, what was measured and its
//! verdict.

use std::fmt::Write as _;

use super::markdown::table_header;
use crate::results::Target;

/// Writes the table of the targets.
pub(super) fn render(out: &mut String, targets: &[Target]) {
    let _ = writeln!(out, "## Targets\n");
    table_header(out, &["Scenario", "Target", "Measured", ""]);
    for target in targets {
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} |",
            target.scenario,
            target.target,
            target.measured,
            verdict(target.met)
        );
    }
    let _ = writeln!(out);
}

fn verdict(met: Option<bool>) -> &'static str {
    match met {
        Some(true) => "✅ met",
        Some(false) => "❌ missed",
        None => "— not measured",
    }
}
