//! The SQLite file every process of the examples shares.

use std::{path::Path, time::Duration};

use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions};

/// Opens (creating it if missing) the SQLite database at `path` for use by many processes at
/// once: write-ahead logging, so readers never block the writer, and a generous busy timeout, so a
/// writer waits for another process's transaction instead of failing.
///
/// # Errors
///
/// The database error if the file cannot be opened or created.
pub async fn open_database(path: &Path) -> Result<SqlitePool, sqlx::Error> {
    let options = SqliteConnectOptions::new()
        .filename(path)
        .create_if_missing(true)
        .journal_mode(SqliteJournalMode::Wal)
        .busy_timeout(Duration::from_secs(30));
    SqlitePoolOptions::new()
        .max_connections(4)
        .connect_with(options)
        .await
}
