//! The Markdown pieces the sections share: a table's header, a percentile's cell, and the table of
//! the contention runs (a row per number of waiters, a column per implementation).

use std::fmt::Write as _;

use crate::{
    contenders::Implementation,
    results::{ContentionPoint, ContentionResult, Percentiles},
    util::fmt_ns,
};

/// Writes the header row of a Markdown table and its separator, one `---` per column.
pub(super) fn table_header(out: &mut String, columns: &[&str]) {
    let _ = write!(out, "|");
    for column in columns {
        if column.is_empty() {
            let _ = write!(out, " |");
        } else {
            let _ = write!(out, " {column} |");
        }
    }
    let _ = writeln!(out, "\n|{}", " --- |".repeat(columns.len()));
}

/// One percentile of `percentiles` (`pick` chooses which) as a cell; `–` when nothing was
/// measured.
pub(super) fn p(percentiles: Option<Percentiles>, pick: impl Fn(&Percentiles) -> u64) -> String {
    percentiles.map_or_else(|| "–".to_owned(), |p| fmt_ns(pick(&p) as f64))
}

/// The contention runs as a table: a row per number of waiters, a column per implementation that
/// was measured.
pub(super) struct WaiterTable<'a> {
    contention: &'a ContentionResult,
    implementations: Vec<Implementation>,
}

impl<'a> WaiterTable<'a> {
    /// The table of `contention`, with a column for each implementation it has points of.
    pub(super) fn new(contention: &'a ContentionResult) -> Self {
        let implementations = Implementation::ALL
            .into_iter()
            .filter(|i| contention.points.iter().any(|p| p.implementation == *i))
            .collect();
        Self {
            contention,
            implementations,
        }
    }

    /// Writes the table, each point rendered by `cell`.
    pub(super) fn write(&self, out: &mut String, cell: &dyn Fn(&ContentionPoint) -> String) {
        let columns: Vec<&str> = std::iter::once("waiters")
            .chain(self.implementations.iter().map(|i| i.name()))
            .collect();
        table_header(out, &columns);
        for &waiters in &self.contention.waiters {
            let _ = write!(out, "| {waiters} |");
            for &i in &self.implementations {
                let text = self
                    .contention
                    .point(i, waiters)
                    .map_or("–".to_owned(), cell);
                let _ = write!(out, " {text} |");
            }
            let _ = writeln!(out);
        }
    }
}
