//! End-to-end tests of the `herald` binary: one test binary, a module per command.

mod cluster;
mod config;
mod consent;
mod consent_rules;
mod inputs;
mod logs;
mod output;
mod pause;
mod plan;
mod recurring;
mod redis;
mod roles;
mod run;
mod support;
mod until_idle;
mod validate;
