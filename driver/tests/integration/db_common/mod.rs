//! Support for the database tests: a uniquely-named PostgreSQL database per test, created on
//! the server at `EMR_DRIVER_TEST_PG` (default postgres://postgres@127.0.0.1:5432) and dropped
//! when the guard goes out of scope.
#![allow(dead_code)]

use std::path::PathBuf;

pub fn server_url() -> String {
    std::env::var("EMR_DRIVER_TEST_PG").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432".to_string())
}

pub struct TestDb {
    pub name: String,
    pub url: String,
}

impl TestDb {
    pub async fn create(purpose: &str) -> TestDb {
        let name = format!("emr_driver_test_{purpose}_{}", uuid::Uuid::new_v4().simple());
        let admin =
            emr_driver::db::connect(&format!("{}/postgres", server_url())).await.expect("connect to the test server");
        admin.batch_execute(&format!("CREATE DATABASE {name}")).await.expect("create the test database");
        TestDb { url: format!("{}/{name}", server_url()), name }
    }

    pub async fn client(&self) -> tokio_postgres::Client {
        emr_driver::db::connect(&self.url).await.expect("connect to the test database")
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        // Drop runs outside async code: use a small runtime on its own thread.
        let name = self.name.clone();
        let _ = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
            runtime.block_on(async move {
                if let Ok(admin) = emr_driver::db::connect(&format!("{}/postgres", server_url())).await {
                    let _ = admin.batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)")).await;
                }
            });
        })
        .join();
    }
}

/// The shared reference data: `SHARED_DATA_DIR`, else `<repo root>/../shared/data`.
pub fn shared_data_dir() -> PathBuf {
    match std::env::var_os("SHARED_DATA_DIR") {
        Some(dir) => PathBuf::from(dir),
        None => PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/data"),
    }
}

/// Full-size `user_purchase.csv.gz` files to test on: one made by the project's generator at
/// the real file's scale (541,908 rows; always, so a fresh clone runs the test) and, when the
/// shared reference data is there, the real file too. Says on stderr which ones it uses.
pub fn full_size_purchase_files(scratch: &std::path::Path) -> Vec<PathBuf> {
    let mut options = emr_driver::generate::Options::new(scratch);
    options.reviews = 100_000;
    options.purchases = Some(541_908);
    options.gzip = true;
    emr_driver::generate::generate(&options).expect("the generator writes the full-size files");
    let mut files = vec![scratch.join("user_purchase.csv.gz")];
    let real = shared_data_dir().join("user_purchase.csv.gz");
    if real.exists() {
        eprintln!("full-size purchases: generated, and the real file {}", real.display());
        files.push(real);
    } else {
        eprintln!("full-size purchases: generated only ({} is absent; set SHARED_DATA_DIR)", real.display());
    }
    files
}

/// A reader over an in-memory file.
pub fn reader(text: &str) -> std::io::Cursor<Vec<u8>> {
    std::io::Cursor::new(text.as_bytes().to_vec())
}
