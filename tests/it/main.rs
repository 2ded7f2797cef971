//! spur's integration tests: one binary, one module per feature. Every test starts the real
//! `spur` binary on `127.0.0.1:0` with a temporary data dir and real git repositories.

// Tests are meant to panic on anything unexpected.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod browser;
mod cli;
mod commit_statuses;
mod containers;
mod durability;
mod environments;
mod execution;
mod hardening;
mod hooks;
mod idempotency;
mod inputs;
mod layering;
mod multi_project;
mod operations;
mod planning;
mod projects;
mod protected_refs;
mod push;
mod python_gitlab;
mod python_runner;
mod releases;
mod repository;
mod role_matrix;
mod runners;
mod schedules;
mod security;
mod support;
mod test_reports;
mod trigger_api;
mod triggers_crud;
mod ui;
mod ui_live;
