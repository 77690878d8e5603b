//! The deployments the client supports besides a single node: Redis Cluster (and its failovers
//! and slot migrations), Sentinel, TLS, replicas confirmed with `WAIT`, and an ACL user without
//! pub/sub rights.

mod acl;
mod cluster;
mod cluster_failover;
mod replicas;
mod sentinel;
mod tls;
