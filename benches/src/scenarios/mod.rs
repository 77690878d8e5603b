//! The scenarios of the benchmark, one module each (scenarios 3, 4 and 5 share one).

pub mod cluster;
pub mod contention;
pub mod footprint;
pub mod latency;
pub mod redis_cpu;
pub mod throughput;
