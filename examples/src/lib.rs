//! The stock-decrement service built on `lock-runtime`.
//!
//! The service, its multi-process demo and its tests land with their own issue; this package
//! holds the place in the workspace so the layout is fixed from the start.
