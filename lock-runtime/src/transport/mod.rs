//! The bottom floor: how a client reaches Redis, knowing nothing of locks.
//!
//! | module | its one job |
//! | --- | --- |
//! | `config` | a client's settings, checked and complete |
//! | `connect` | opening a deployment's command connection; what its server can run |
//! | `connection` | the command connection, replaced when it stops answering |
//! | `naming` | the client's name on every connection (`CLIENT SETNAME`) |
//! | `sentinel` | a Sentinel-managed primary, found and followed through failovers |
//! | `tls` | `rediss://` URLs and their certificates |
//! | `deadline` | a bound on every wait for an answer, swept by one task |
//! | `failure` | whether a failed request may be sent again, and whether it ran |
//! | `sync` | helpers for mutexes whose state no panic can tear, and for maps that empty out |

pub(crate) mod background;
pub(crate) mod config;
pub(crate) mod connect;
pub(crate) mod connection;
pub(crate) mod deadline;
pub(crate) mod failure;
pub(crate) mod naming;
pub(crate) mod nodes;
pub(crate) mod sentinel;
pub(crate) mod sync;
pub(crate) mod tls;
