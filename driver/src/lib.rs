//! `emr-driver`: renders, deploys, runs and diagnoses the movie-analytics pipeline on Amazon
//! EMR or on a local Spark. `docs/architecture.md` maps the modules.

pub mod aws;
pub mod backend;
pub mod backfill;
#[cfg(test)]
mod catalogue_check;
pub mod cli;
pub mod clock;
pub mod cluster;
pub mod config;
pub mod db;
pub mod deploy;
pub mod diagnose;
pub mod error;
pub mod generate;
pub mod ingest;
pub mod inputs;
pub mod lock;
pub mod manifest;
pub mod pipeline;
pub mod plan;
pub mod poll;
pub mod preflight;
pub mod publish;
pub mod render;
pub mod reporting;
pub mod runner;
pub mod secrets;
pub mod serverless;
pub mod split;
pub mod step;
pub mod store;
