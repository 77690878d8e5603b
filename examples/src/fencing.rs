//! A store that refuses writes from a lock holder whose lease has run out.

use sqlx::SqlitePool;

/// Documents whose every write carries the writer's fencing token. A write whose token is not
/// greater than the last one the store accepted for that document is refused: its writer's lock
/// expired (a pause, a frozen VM) and a newer holder has written since.
#[derive(Debug, Clone)]
pub struct FencedStore {
    pool: SqlitePool,
}

/// What the store did with a write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WriteOutcome {
    /// Written; the document now carries this token.
    Accepted,
    /// Refused: the store has seen this newer token for the document.
    Rejected {
        /// The token of the last accepted write.
        newest_seen: u64,
    },
}

impl FencedStore {
    /// A store over `pool`, creating its table if missing.
    ///
    /// # Errors
    ///
    /// The database error if the table cannot be created.
    pub async fn new(pool: SqlitePool) -> Result<Self, sqlx::Error> {
        sqlx::raw_sql(
            "CREATE TABLE IF NOT EXISTS documents (
                id         TEXT PRIMARY KEY,
                body       TEXT NOT NULL,
                last_token INTEGER NOT NULL
            )",
        )
        .execute(&pool)
        .await?;
        Ok(Self { pool })
    }

    /// Writes `body` to document `id` if `token` is newer than every token written there before.
    ///
    /// # Errors
    ///
    /// The database error.
    pub async fn write(
        &self,
        id: &str,
        body: &str,
        token: u64,
    ) -> Result<WriteOutcome, sqlx::Error> {
        let token = i64::try_from(token).unwrap_or(i64::MAX);
        let written = sqlx::query(
            "INSERT INTO documents (id, body, last_token) VALUES (?, ?, ?)
             ON CONFLICT (id) DO UPDATE SET body = excluded.body, last_token = excluded.last_token
             WHERE documents.last_token < excluded.last_token",
        )
        .bind(id)
        .bind(body)
        .bind(token)
        .execute(&self.pool)
        .await?;
        if written.rows_affected() == 1 {
            return Ok(WriteOutcome::Accepted);
        }
        let newest: i64 = sqlx::query_scalar("SELECT last_token FROM documents WHERE id = ?")
            .bind(id)
            .fetch_one(&self.pool)
            .await?;
        Ok(WriteOutcome::Rejected {
            newest_seen: u64::try_from(newest).unwrap_or_default(),
        })
    }

    /// The document's body and the token it was written with.
    ///
    /// # Errors
    ///
    /// The database error.
    pub async fn read(&self, id: &str) -> Result<Option<(String, u64)>, sqlx::Error> {
        let row: Option<(String, i64)> =
            sqlx::query_as("SELECT body, last_token FROM documents WHERE id = ?")
                .bind(id)
                .fetch_optional(&self.pool)
                .await?;
        Ok(row.map(|(body, token)| (body, u64::try_from(token).unwrap_or_default())))
    }
}
