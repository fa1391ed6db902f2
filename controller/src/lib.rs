//! Reconciler: keeps a Docker Swarm equal to a spec directory.
//!
//! The flow of every command is the same: load the spec (`reconciler_spec`),
//! observe the swarm ([`swarm`]), compute a [`plan`] (pure), and for `apply`
//! execute it ([`apply`]). Only [`swarm`] talks to Docker.

pub mod apply;
pub mod bounded;
pub mod cli;
pub mod digest;
pub mod failure;
pub mod firstboot;
pub mod health;
pub mod http;
pub mod init;
pub mod install;
pub mod labels;
pub mod maintenance;
pub mod metrics;
pub mod node;
pub mod observed;
pub mod pipeline;
pub mod plan;
pub mod policy;
pub mod preflight;
pub mod progress;
pub mod reconcile;
pub mod runtime;
pub mod sandbox;
pub mod source;
pub mod status;
pub mod status_page;
pub mod swarm;
pub mod timestamp;
