//! Procedural macros of `lock-runtime`.
//!
//! Users depend on `lock-runtime`, which re-exports what this crate provides. The
//! `#[distribute_lock]` attribute lands here with its own issue; until then this crate is an
//! empty member of the workspace so that the layout and the release train are fixed.
