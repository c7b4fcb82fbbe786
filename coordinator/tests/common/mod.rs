//! Helpers shared by the coordinator's integration tests.
#![allow(dead_code, unreachable_pub)]

pub mod farm;
pub mod redis_server;
pub mod s3_server;
