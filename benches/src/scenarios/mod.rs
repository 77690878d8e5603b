//! The scenarios of the benchmark, one module each (scenarios 3, 4 and 5 share one).

pub mod cluster;
pub mod contention;
pub mod footprint;
pub mod latency;
pub mod redis_cpu;
pub mod throughput;

use crate::{BenchResult, redis_stats::Admin, redisson};

/// The keys of the release memos of every series that writes them: lock-runtime's
/// (`<lock key>:memo:<request>`, see `key_of` in its `common.lua`) and the Redisson-style
/// reference's.
const MEMO_PATTERNS: [&str; 2] = ["*:memo:*", redisson::MEMO_PATTERN];

/// Deletes every release memo, outside the measured time. A memo outlives the slice of a series
/// that wrote it by 10–13.5 s and expires in whichever slice runs then: left alone, the same few
/// series of a run would pay for the others' expiries.
///
/// # Errors
///
/// When Redis fails.
pub async fn unlink_memos(admin: &mut Admin) -> BenchResult<()> {
    for pattern in MEMO_PATTERNS {
        admin.unlink_matching(pattern).await?;
    }
    Ok(())
}
