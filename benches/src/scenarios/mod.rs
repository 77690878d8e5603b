//! The scenarios of the benchmark, one module each (scenarios 3, 4 and 5 share one).

pub mod cluster;
pub mod contention;
pub mod footprint;
pub mod latency;
pub mod redis_cpu;
pub mod throughput;

use crate::{BenchResult, redis_stats::Admin, redisson};

/// Deletes every release memo, outside the measured time: the Redisson-style reference's, the
/// only series that writes them (lock-runtime's releases write none; only
/// `Semaphore::release_by_id`, which no scenario calls, keeps one). A memo outlives the slice of
/// the series that wrote it by 13.5 s and expires in whichever slice runs then: left alone, the
/// series after it would pay for its expiries.
///
/// # Errors
///
/// When Redis fails.
pub async fn unlink_memos(admin: &mut Admin) -> BenchResult<()> {
    admin.unlink_matching(redisson::MEMO_PATTERN).await?;
    Ok(())
}
