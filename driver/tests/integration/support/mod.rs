//! Shared test support for the integration tests (`mod support;` in each test file).
#![allow(dead_code)]

pub mod moto;
pub mod requests;
