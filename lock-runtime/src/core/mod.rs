//! The crate-private core every primitive stands on; it knows no primitive.
//!
//! | module | its one job |
//! | --- | --- |
//! | `backend` | what a client shares with its handles and guards |
//! | `commands` | what Redis says of its commands, for checks before a script runs them |
//! | `ids` | client, owner and request ids |
//! | `keys` | a resource's Redis keys, under one hash tag |
//! | `script_path` | the one path of every script call: resends, time limits, typed replies |
//! | `lua` | how a primitive declares its Lua scripts, one line per file |
//! | `reply` | decoding a script's reply into its type |
//! | `hub` | one subscription per channel, classic or sharded by slot; wake-ups by count |
//! | `slots` | a Redis Cluster's hash slots and who serves them (`CLUSTER SLOTS`) |
//! | `wait` | the wait engine: try, subscribe, sleep at most the TTL, pass unused wake-ups on |
//! | `hold` | undo of requests in flight, release on drop, releases that always finish |
//! | `watchdog` | one task renewing every renewable hold |
//! | `lease` | lease arithmetic and limits; what a holder knows of its lease |
//! | `meter` | what is measured (the `metrics` feature): waits, holds, renewals, losses |
//! | `scope` | reentrancy by dynamic scope, one re-entry at a time per scope |

pub(crate) mod backend;
pub(crate) mod commands;
pub(crate) mod hold;
pub(crate) mod hub;
pub(crate) mod ids;
pub(crate) mod keys;
pub(crate) mod lease;
pub(crate) mod lua;
pub(crate) mod meter;
pub(crate) mod reply;
pub(crate) mod scope;
pub(crate) mod script_path;
pub(crate) mod slots;
pub(crate) mod wait;
pub(crate) mod watchdog;
