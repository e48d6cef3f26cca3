//! The schema migrations, compiled into the binary (one set per backend: the SQL differs in a few types),
//! and the `sqlx` migration source that hands them to the migrator at start.

use std::borrow::Cow;

use futures::future::BoxFuture;
use sqlx::error::BoxDynError;
use sqlx::migrate::{Migration, MigrationSource, MigrationType};

/// `(version, description, SQLite, PostgreSQL)`, oldest first. A released migration never changes: the
/// migrator refuses a database whose applied migration's checksum differs.
const MIGRATIONS: &[(i64, &str, &str, &str)] = &[
    (
        1,
        "subjects",
        include_str!("../../migrations/sqlite/0001_subjects.sql"),
        include_str!("../../migrations/postgres/0001_subjects.sql"),
    ),
    (
        2,
        "kept images",
        include_str!("../../migrations/sqlite/0002_kept_images.sql"),
        include_str!("../../migrations/postgres/0002_kept_images.sql"),
    ),
];

/// Which SQL dialect a store speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Dialect {
    Sqlite,
    Postgres,
}

/// The migrations of one dialect, as a `sqlx` source.
#[derive(Debug)]
pub(crate) struct Embedded(pub(crate) Dialect);

impl MigrationSource<'static> for Embedded {
    fn resolve(self) -> BoxFuture<'static, Result<Vec<Migration>, BoxDynError>> {
        let migrations = MIGRATIONS
            .iter()
            .map(|(version, description, sqlite, postgres)| {
                let sql = match self.0 {
                    Dialect::Sqlite => sqlite,
                    Dialect::Postgres => postgres,
                };
                Migration::new(
                    *version,
                    Cow::Borrowed(*description),
                    MigrationType::Simple,
                    Cow::Borrowed(*sql),
                    false,
                )
            })
            .collect();
        Box::pin(async move { Ok(migrations) })
    }
}
