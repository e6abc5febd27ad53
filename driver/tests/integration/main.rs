//! The driver's integration tests, in one test binary (one link of the AWS SDK and the
//! database client instead of one per file). Each module is one area; `support` (moto server,
//! request logs) and `db_common` (a PostgreSQL database per test) are shared by them.
//! nextest runs every test in its own process, so tests that install signal handlers, set the
//! subreaper flag or kill processes do not see each other.

mod db_common;
mod support;

mod backfill_orchestration;
mod cluster_moto;
mod cluster_state_http;
mod config_resolution;
mod db_cli;
mod db_connect;
mod db_user_purchase;
mod db_warehouse;
mod deploy_artifacts;
mod deploy_cli;
mod deploy_moto;
mod diagnose_logs;
mod generate_cli;
mod generate_files;
mod ingest_parts;
mod kill_driver;
mod lock_run;
mod pipeline_orchestration;
mod poll_scripted;
mod render_cli;
mod render_templates;
mod run_emr_moto;
mod runner_cli_moto;
mod runner_emr_http;
mod runner_emr_moto;
mod runner_local;
mod runner_local_shared;
mod s3_store_moto;
mod secrets_iam;
mod secrets_moto;
mod serverless_fake;
mod serverless_moto;
mod signal_cancel;
mod signal_driver;
mod submit_cli;
