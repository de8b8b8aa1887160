//! End-to-end tests of the `herald` binary: one test binary, a module per command.

mod consent;
mod plan;
mod receiver;
mod run;
mod support;
mod until_idle;
mod validate;
