//! Scratch databases for tests and benchmarks: a SQLite file in a temporary directory, or a
//! new database on the Postgres server of `TEST_DATABASE_URL`, dropped when done.

use std::str::FromStr;

use anyhow::Context as _;
use sqlx::ConnectOptions;
use sqlx::postgres::{PgConnectOptions, PgPool};
use uuid::Uuid;

/// A database that exists until this value drops.
#[derive(Debug)]
pub struct ScratchDatabase {
    /// Its URL, for `DATABASE_URL`.
    pub url: String,
    _dir: Option<tempfile::TempDir>,
    postgres: Option<(String, String)>,
}

impl ScratchDatabase {
    /// A fresh SQLite file.
    pub fn sqlite() -> ScratchDatabase {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let url = format!("sqlite://{}/comms.db", dir.path().display());
        ScratchDatabase { url, _dir: Some(dir), postgres: None }
    }

    /// A fresh database on the server `TEST_DATABASE_URL` names, or `None` when it is unset.
    pub async fn postgres() -> Option<ScratchDatabase> {
        let server = std::env::var("TEST_DATABASE_URL").ok().filter(|u| !u.is_empty())?;
        let scratch = ScratchDatabase::postgres_at(&server).await;
        Some(scratch.expect("TEST_DATABASE_URL must accept connections and CREATE DATABASE"))
    }

    /// A fresh database on the Postgres server at `server` (a URL whose database is the one to
    /// connect to for `CREATE DATABASE`, such as `postgres://postgres@127.0.0.1:5432/`).
    pub async fn postgres_at(server: &str) -> anyhow::Result<ScratchDatabase> {
        let name = format!("kc_test_{}", Uuid::now_v7().simple());
        let admin = PgPool::connect(server).await.context("connecting to Postgres")?;
        sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
            .execute(&admin)
            .await
            .context("creating the scratch database")?;
        admin.close().await;
        let options = PgConnectOptions::from_str(server).context("a Postgres URL")?.database(&name);
        let url = options.to_url_lossy().to_string();
        Ok(ScratchDatabase { url, _dir: None, postgres: Some((server.to_owned(), name)) })
    }
}

impl Drop for ScratchDatabase {
    fn drop(&mut self) {
        let Some((server, name)) = self.postgres.take() else {
            return;
        };
        // Dropped on a thread of its own: Drop cannot await, and the caller's runtime is busy.
        let dropped = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
            runtime.block_on(async {
                let admin = PgPool::connect(&server).await?;
                let sql = format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)");
                sqlx::query(sqlx::AssertSqlSafe(sql)).execute(&admin).await?;
                admin.close().await;
                Ok::<_, anyhow::Error>(())
            })
        });
        if let Ok(Err(error)) = dropped.join() {
            eprintln!("could not drop the test database: {error}");
        }
    }
}
