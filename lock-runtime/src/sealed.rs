//! Sealing: the public traits that only this crate's types may implement
//! ([`LockSource`](crate::LockSource)) take [`Sealed`] as a supertrait, which is public but
//! unnameable outside the crate.

use std::sync::Arc;

use crate::{client::LockClient, multi::redlock::Redlock};

/// Seals [`LockSource`](crate::LockSource): only this crate's types are sources.
pub trait Sealed {}

impl Sealed for LockClient {}
impl Sealed for Redlock {}
impl<T: Sealed + ?Sized> Sealed for &T {}
impl<T: Sealed + ?Sized> Sealed for Arc<T> {}
impl<T: Sealed + ?Sized> Sealed for Box<T> {}
