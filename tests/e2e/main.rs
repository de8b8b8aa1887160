//! End-to-end tests of the `herald` binary: one test binary, a module per command.

mod consent;
mod inputs;
mod consent_rules;
mod plan;
mod receiver;
mod run;
mod support;
mod validate;
