//! See docs/architecture.md (driver modules).
