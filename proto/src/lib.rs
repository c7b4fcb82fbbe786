//! The `deepstyle.v1` wire API: messages and the JobService / WorkerService clients and servers.
//!
//! Generated at build time from `proto/deepstyle/v1/deepstyle.proto` with protox and
//! tonic-prost-build, so building needs no system `protoc`. [`FILE_DESCRIPTOR_SET`] feeds
//! gRPC server reflection.

/// Version 1 of the DeepStyle API.
#[allow(
    missing_docs,
    unreachable_pub,
    clippy::all,
    missing_debug_implementations
)]
pub mod v1 {
    tonic::include_proto!("deepstyle.v1");
}

/// The encoded `FileDescriptorSet` of `deepstyle.v1`, for gRPC server reflection.
pub const FILE_DESCRIPTOR_SET: &[u8] =
    include_bytes!(concat!(env!("OUT_DIR"), "/deepstyle_descriptor.bin"));

/// Default largest gRPC message either end accepts, in bytes (64 MiB).
///
/// Streams carry images in chunks of [`CHUNK_BYTES`], so this bounds one unary message (and
/// leaves room above tonic's 4 MiB default for large job listings).
pub const MAX_MESSAGE_BYTES: usize = 64 << 20;

/// Size of one chunk in the image, result and blob streams, in bytes (1 MiB).
pub const CHUNK_BYTES: usize = 1 << 20;
