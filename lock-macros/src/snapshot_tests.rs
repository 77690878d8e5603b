//! Snapshot tests of the expansion (filled in by the UI-tests work).
