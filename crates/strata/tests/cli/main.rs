//! strata's command-line tests, one binary: every module drives the `strata` binary end to end.
//! One binary links the whole tree once instead of once per test file.

mod build_fidelity;
mod build_image;
mod cascade;
mod chain_cli;
mod common;
mod crash;
mod cross_project;
mod custody_cli;
mod debian_chain;
mod deploy;
mod dockerfile_cli;
mod engine_export;
mod errors;
mod four_projects;
mod gc_caches;
mod git_context;
mod hostile_archives;
mod import;
mod inspect_chain;
mod inspect_layers;
mod key_cli;
mod packages;
mod pinned_base;
mod registry_interop;
mod registry_load;
mod run_steps;
mod sbom_advisories;
mod store_cli;
mod tiertest_cascade;
mod tiertest_export;
mod tiertest_kinds;
mod upstream_lock;
mod vendor_signatures;
mod watch_git;
mod watch_upstream;
