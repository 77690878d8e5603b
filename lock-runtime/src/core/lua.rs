//! How a primitive declares its Lua scripts: one line per `.lua` file, giving the `static` the
//! code calls and its place in the module's `SOURCES` (what the `testing` feature hands to tests
//! and the benchmark), so no script is named twice.
//!
//! Lua scripts in Redis cannot include one another: a script that uses shared functions is sent
//! with their file in front (the family's `common.lua`, the latch's and the semaphore's
//! `requests.lua` below, a primitive's own). Every call of a declared script goes through the
//! script path (`core/script_path.rs`).

use crate::transport::connect::ServerFeatures;

/// `core/scripts/requests.lua`, for [`lua_scripts!`] lists of files sent in front: the ids of
/// the requests that ran lately on a resource, so that a copy of one counts once however late
/// it lands (the count-down latch, the semaphore's permit counts).
macro_rules! requests_lua {
    () => {
        include_str!(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/src/core/scripts/requests.lua"
        ))
    };
}
pub(crate) use requests_lua;

/// Declares the Lua scripts of one module, one line per file of its `scripts/` folder:
///
/// ```text
/// lua_scripts! {
///     front: [common_lua!()];
///     /// Re-enter a lock the scope holds; see `scripts/reenter.lua`. Reply: `Reentered`.
///     pub(crate) static REENTER: Script = "reenter.lua";
///     /// Extend a hold's lease; see `scripts/renew.lua`. Sent alone.
///     pub(crate) static RENEW: Script = [] "renew.lua";
///     /// Read-only, declared with a shebang ([`Flagged`]); not among `SOURCES`.
///     unlisted pub(crate) static INFO: Flagged =
///         ["#!lua flags=no-writes\n", inspect_lua!()] "info.lua";
/// }
/// ```
///
/// Each line makes a `static Lazy<Script>` (or `Lazy<Flagged>`) of `scripts/<file>` with the
/// `front` files before it, or the list given on the line instead; and, unless `unlisted`, a
/// `(file, source)` entry in the module's `pub(crate) const SOURCES`, the source exactly as
/// sent. Scripts left out of `SOURCES` are the operators' and the connection's (`info`,
/// `holders`, `commands`), not the steps of acquiring and releasing that tests drive and the
/// benchmark pipelines.
macro_rules! lua_scripts {
    (front: [$($front:expr),* $(,)?]; $($lines:tt)*) => {
        $crate::core::lua::lua_scripts!(@line [$($front),*] [] $($lines)*);
    };
    // Every line read: the listed ones.
    (@line [$($front:expr),*] [$(($file:literal, $source:expr))*]) => {
        /// Every script of this module but the unlisted ones: `(file name, source as sent)`.
        #[cfg_attr(not(feature = "testing"), allow(dead_code))]
        pub(crate) const SOURCES: &[(&str, &str)] = &[$(($file, $source)),*];
    };
    (@line [$($front:expr),*] [$($listed:tt)*]
        $(#[$doc:meta])* unlisted $vis:vis static $name:ident: $kind:ident
        = $([$($own:expr),* $(,)?])? $file:literal; $($rest:tt)*) => {
        $crate::core::lua::lua_scripts!(@static $(#[$doc])* $vis $name $kind
            $crate::core::lua::lua_scripts!(@source [$($front),*] $([$($own),*])? $file));
        $crate::core::lua::lua_scripts!(@line [$($front),*] [$($listed)*] $($rest)*);
    };
    (@line [$($front:expr),*] [$($listed:tt)*]
        $(#[$doc:meta])* $vis:vis static $name:ident: $kind:ident
        = $([$($own:expr),* $(,)?])? $file:literal; $($rest:tt)*) => {
        $crate::core::lua::lua_scripts!(@static $(#[$doc])* $vis $name $kind
            $crate::core::lua::lua_scripts!(@source [$($front),*] $([$($own),*])? $file));
        $crate::core::lua::lua_scripts!(@line [$($front),*] [$($listed)* ($file,
            $crate::core::lua::lua_scripts!(@source [$($front),*] $([$($own),*])? $file))]
            $($rest)*);
    };
    (@static $(#[$doc:meta])* $vis:vis $name:ident $kind:ident $source:expr) => {
        $(#[$doc])*
        $vis static $name: ::once_cell::sync::Lazy<$kind> =
            ::once_cell::sync::Lazy::new(|| $kind::new($source));
    };
    // The source as sent: the line's own list in front if it has one, else the module's.
    (@source [$($front:expr),*] [$($own:expr),*] $file:literal) => {
        concat!($($own,)* include_str!(concat!("scripts/", $file)))
    };
    (@source [$($front:expr),*] $file:literal) => {
        concat!($($front,)* include_str!(concat!("scripts/", $file)))
    };
}
pub(crate) use lua_scripts;

/// A script whose source starts with a `#!lua` shebang line (flags such as `no-writes`, or on
/// Redis Cluster the check that it touches only its declared keys' slots), sent as is to Redis
/// 7.0 and newer, and without that line to older servers, which cannot compile it (`unexpected
/// symbol near '#'`) and run every script as a shebang-less one. Both are hashed once.
pub(crate) struct Flagged {
    with_shebang: redis::Script,
    without_shebang: redis::Script,
}

impl Flagged {
    /// The script of `source`, whose first line is its shebang.
    pub(crate) fn new(source: &str) -> Flagged {
        let body = source
            .strip_prefix("#!")
            .and_then(|rest| rest.split_once('\n'))
            .map_or(source, |(_, body)| body);
        Flagged {
            with_shebang: redis::Script::new(source),
            without_shebang: redis::Script::new(body),
        }
    }

    /// The variant `server` compiles: with the shebang when it reads script flags.
    pub(crate) fn for_server(&self, server: ServerFeatures) -> &redis::Script {
        if server.script_flags() {
            &self.with_shebang
        } else {
            &self.without_shebang
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_flagged_script_loses_its_shebang_line_only() {
        let script = Flagged::new("#!lua flags=no-writes\nreturn 1\n");
        assert_eq!(
            script.without_shebang.get_hash(),
            redis::Script::new("return 1\n").get_hash()
        );
        assert_eq!(
            script.with_shebang.get_hash(),
            redis::Script::new("#!lua flags=no-writes\nreturn 1\n").get_hash()
        );
    }
}
