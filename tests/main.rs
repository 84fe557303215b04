//! The integration tests of stackc, one binary (see docs/CONTRIBUTING.md):
//!
//! - `examples`: every example x topology, all generated files, as snapshots with
//!   the input echoed;
//! - `errors`: every file in `tests/errors/` against the codes it declares, and its
//!   rendered diagnostics as a snapshot;
//! - `cli`: exit codes, `--out`, determinism, every command as a user runs it;
//! - `output`: what a build leaves in its output directory: ownership, stale
//!   files, links, kills, concurrent builds, syncs;
//! - `real_programs`: the generated files of the examples, the cases and varied
//!   generated stacks (`generate`) run through docker-compose, yamllint
//!   and a shell;
//! - `parity`: each service of a stack with a compose and a Kubernetes topology
//!   means the same on both;
//! - `network_policy`: the NetworkPolicies allow exactly the connections the
//!   manifests make.

mod acme_e2e;
mod alerting;
mod backup_restore;
mod certificate_probe;
mod cli;
mod cnpg_backup;
mod consistency;
mod editors;
mod errors;
mod examples;
mod firewall;
mod format;
mod generate;
mod grafana;
mod graph;
mod kubernetes;
mod kubernetes_alerts;
mod lsp;
mod meaning;
mod neovim;
mod netns;
mod network_policy;
mod output;
mod parity;
mod parser;
mod patroni_backup;
mod patroni_cluster;
mod patroni_failover;
mod postgres_access;
mod postgres_roles;
mod postgres_settings;
mod postgres_streaming;
mod postgres_tls;
mod prometheus_server;
mod proxy_e2e;
mod real_programs;
mod redis_replica;
mod redis_sentinel;
mod redis_tls_replica;
mod redis_users;
mod s3_store;
mod schedules;
mod sentinel_failover;
mod support;
mod tidy;
mod why;
