//! The `#[distribute_lock]` attribute of `lock-runtime`.
//!
//! Depend on `lock-runtime` and use `lock_runtime::distribute_lock`: its documentation describes
//! the attribute's arguments and behaviour. This crate only parses and rewrites the function; the
//! code it generates calls `::lock_runtime::__private`, which may change between releases
//! (`lock-runtime` pins this crate to its exact version).
//!
//! `attr` parses the arguments into a typed struct, `template` checks the key template against the
//! function's parameters, and `expand` generates the function.

#![forbid(unsafe_code)]
#![warn(missing_docs, missing_debug_implementations, unreachable_pub)]

mod attr;
mod expand;
mod template;

use proc_macro::TokenStream;

/// (The documentation is on the re-export, `lock_runtime::distribute_lock`, where its examples
/// can run against the runtime.)
#[proc_macro_attribute]
pub fn distribute_lock(args: TokenStream, item: TokenStream) -> TokenStream {
    expand::distribute_lock(args.into(), item.into()).into()
}

#[cfg(test)]
mod snapshot_tests;
