//! The attribute's arguments, parsed into [`LockArgs`] and checked.

use std::time::Duration;

use proc_macro2::{Ident, Span, TokenStream, TokenTree};
use syn::{
    Expr, ExprArray, Lit, LitBool, LitStr, Token,
    parse::{Parse, ParseStream},
    spanned::Spanned,
};

mod kw {
    syn::custom_keyword!(key);
    syn::custom_keyword!(keys);
    syn::custom_keyword!(wait);
    syn::custom_keyword!(lease);
    syn::custom_keyword!(client);
    syn::custom_keyword!(on_lease_lost);
    syn::custom_keyword!(fair);
    syn::custom_keyword!(mode);
}

/// The arguments of one `#[distribute_lock(...)]`, each set at most once.
///
/// Parsing never fails as a whole: every mistake (an argument that does not parse, a bad
/// duration, a repeat, a missing key, arguments that cannot go together) is collected in
/// `errors`, and the arguments that are right are kept, so that every mistake of the attribute
/// and of the function is reported at once.
#[derive(Default)]
pub(crate) struct LockArgs {
    pub(crate) key: Slot<LitStr>,
    /// The string literals of `keys = [...]`, in order (the elements that are not one were
    /// reported); taken but empty-handed for `keys = []`.
    pub(crate) keys: Slot<Vec<LitStr>>,
    pub(crate) wait: Slot<DurationArg>,
    pub(crate) lease: Slot<DurationArg>,
    pub(crate) client: Slot<Expr>,
    pub(crate) on_lease_lost: Slot<LeaseLostPolicy>,
    pub(crate) fair: Slot<LitBool>,
    pub(crate) mode: Slot<LockMode>,
    /// The path the generated code reaches `lock-runtime` by: `crate = "platform::lock"`.
    pub(crate) krate: Slot<syn::Path>,
    pub(crate) errors: Errors,
}

/// What to do with the body when the lease is lost while it runs.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum LeaseLostPolicy {
    Abort,
    Continue,
}

/// Which side of the read-write lock `mode` takes.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum LockMode {
    Read,
    Write,
}

/// A duration given as a string literal and parsed at expansion time.
pub(crate) struct DurationArg {
    pub(crate) value: Duration,
    pub(crate) literal: LitStr,
}

/// An argument that may be given once; a repeat is an error pointing at the second one.
///
/// An argument given with an invalid value (already reported) still takes its slot, so that a
/// repeat of it is reported too. The slot keeps the argument's name as written, so that an
/// error about arguments that cannot go together points at each of them.
pub(crate) struct Slot<T> {
    given: Option<Ident>,
    value: Option<T>,
}

impl<T> Default for Slot<T> {
    fn default() -> Self {
        Self {
            given: None,
            value: None,
        }
    }
}

impl<T> Slot<T> {
    fn set(&mut self, name: &str, span: Span, value: Option<T>, errors: &mut Errors) {
        if self.given.is_some() {
            errors.push(syn::Error::new(
                span,
                format!("`{name}` is given twice; keep one"),
            ));
        } else {
            self.given = Some(Ident::new(name, span));
            self.value = value;
        }
    }

    pub(crate) fn get(&self) -> Option<&T> {
        self.value.as_ref()
    }

    fn is_taken(&self) -> bool {
        self.given.is_some()
    }

    /// The argument's name where it was written, if it was given.
    fn given(&self) -> Option<&Ident> {
        self.given.as_ref()
    }
}

/// Errors collected while checking, reported together.
#[derive(Default)]
pub(crate) struct Errors(Option<syn::Error>);

impl Errors {
    pub(crate) fn push(&mut self, error: syn::Error) {
        match &mut self.0 {
            Some(errors) => errors.combine(error),
            None => self.0 = Some(error),
        }
    }

    pub(crate) fn into_result(self) -> syn::Result<()> {
        self.0.map_or(Ok(()), Err)
    }

    /// The collected errors, for a caller that already knows one was pushed.
    pub(crate) fn into_error(self) -> syn::Error {
        self.0.unwrap_or_else(|| {
            syn::Error::new(
                Span::call_site(),
                "#[distribute_lock] could not be expanded",
            )
        })
    }
}

/// One `name = value` pair, before checking.
enum Arg {
    Key(kw::key, LitStr),
    Keys(kw::keys, ExprArray),
    /// `key` or `keys` (the name, where it was written) with a value that is not one: the
    /// argument counts as given, so that no "missing `key`" is reported beside its error.
    Malformed(&'static str, Span, syn::Error),
    Wait(kw::wait, LitStr),
    Lease(kw::lease, LitStr),
    Client(kw::client, Expr),
    OnLeaseLost(kw::on_lease_lost, LitStr),
    Fair(kw::fair, LitBool),
    Mode(kw::mode, LitStr),
    Crate(Token![crate], LitStr),
}

const ARGUMENTS: &str =
    "`key`, `keys`, `wait`, `lease`, `client`, `on_lease_lost`, `fair`, `mode`, `crate`";

impl Parse for Arg {
    fn parse(input: ParseStream<'_>) -> syn::Result<Self> {
        let lookahead = input.lookahead1();
        if lookahead.peek(kw::key) {
            let name: kw::key = input.parse()?;
            Ok(match string_value(input, "key", "\"stock:{product_id}\"") {
                Ok(literal) => Self::Key(name, literal),
                Err(error) => Self::malformed(input, "key", name.span, error),
            })
        } else if lookahead.peek(kw::keys) {
            let name: kw::keys = input.parse()?;
            Ok(match list_value(input, name.span) {
                Ok(list) => Self::Keys(name, list),
                Err(error) => Self::malformed(input, "keys", name.span, error),
            })
        } else if lookahead.peek(kw::wait) {
            let name = input.parse()?;
            Ok(Self::Wait(name, string_value(input, "wait", "\"5s\"")?))
        } else if lookahead.peek(kw::lease) {
            let name = input.parse()?;
            Ok(Self::Lease(name, string_value(input, "lease", "\"3s\"")?))
        } else if lookahead.peek(kw::client) {
            let name = input.parse()?;
            input.parse::<Token![=]>()?;
            Ok(Self::Client(name, input.parse()?))
        } else if lookahead.peek(kw::on_lease_lost) {
            let name = input.parse()?;
            Ok(Self::OnLeaseLost(
                name,
                string_value(input, "on_lease_lost", "\"abort\"")?,
            ))
        } else if lookahead.peek(kw::fair) {
            let name: kw::fair = input.parse()?;
            Ok(Self::Fair(name, bool_value(input, "fair", name.span)?))
        } else if lookahead.peek(kw::mode) {
            let name: kw::mode = input.parse()?;
            Ok(Self::Mode(name, mode_value(input, name.span)?))
        } else if lookahead.peek(Token![crate]) {
            let name = input.parse()?;
            Ok(Self::Crate(
                name,
                string_value(input, "crate", "\"::lock_runtime\"")?,
            ))
        } else if input.peek(syn::Ident) {
            let unknown: syn::Ident = input.parse()?;
            Err(syn::Error::new(
                unknown.span(),
                format!("unknown argument `{unknown}`; expected one of {ARGUMENTS}"),
            ))
        } else {
            Err(lookahead.error())
        }
    }
}

impl Arg {
    /// The argument `name` whose value did not parse, with what is left of it skipped.
    fn malformed(
        input: ParseStream<'_>,
        name: &'static str,
        span: Span,
        error: syn::Error,
    ) -> Self {
        let _rest: TokenStream = input.parse().unwrap_or_default();
        Self::Malformed(name, span, error)
    }
}

/// Parses `= "..."`, saying what a valid value looks like when it is not a string literal.
fn string_value(input: ParseStream<'_>, name: &str, example: &str) -> syn::Result<LitStr> {
    input.parse::<Token![=]>()?;
    if input.peek(LitStr) {
        return input.parse();
    }
    let value: Expr = input.parse()?;
    Err(syn::Error::new(
        value.span(),
        format!("`{name}` takes a string literal, e.g. `{name} = {example}`"),
    ))
}

/// Parses `= true` or `= false`. Anything else, a missing value included, is an error on the
/// offending token (the value, or the name when there is none) saying what is accepted.
fn bool_value(input: ParseStream<'_>, name: &str, name_span: Span) -> syn::Result<LitBool> {
    let expected = |span: Span| {
        syn::Error::new(
            span,
            format!("`{name}` takes `true` or `false`, e.g. `{name} = true`"),
        )
    };
    if input.is_empty() {
        return Err(expected(name_span));
    }
    input.parse::<Token![=]>()?;
    if input.is_empty() {
        return Err(expected(name_span));
    }
    if input.peek(LitBool) {
        return input.parse();
    }
    let value: Expr = input.parse()?;
    if let Expr::Lit(syn::ExprLit {
        lit: Lit::Str(text),
        ..
    }) = &value
        && let flag @ ("true" | "false") = text.value().as_str()
    {
        return Err(syn::Error::new(
            value.span(),
            format!("`{name}` takes `true` or `false` without quotes: `{name} = {flag}`"),
        ));
    }
    Err(expected(value.span()))
}

/// Parses `= "read"` or `= "write"` as far as syntax goes: a string literal, checked against the
/// two modes later. Anything else, a missing value included, is an error on the offending token
/// (the value, or the name when there is none) saying what is accepted.
fn mode_value(input: ParseStream<'_>, name_span: Span) -> syn::Result<LitStr> {
    const EXPECTED: &str = "`mode` takes \"read\" or \"write\", e.g. `mode = \"read\"`";
    if input.is_empty() {
        return Err(syn::Error::new(name_span, EXPECTED));
    }
    input.parse::<Token![=]>()?;
    if input.is_empty() {
        return Err(syn::Error::new(name_span, EXPECTED));
    }
    if input.peek(LitStr) {
        return input.parse();
    }
    let value: Expr = input.parse()?;
    if let Expr::Path(path) = &value
        && let Some(mode) = path.path.get_ident()
        && (mode == "read" || mode == "write")
    {
        return Err(syn::Error::new_spanned(
            &value,
            format!("`mode` takes a string literal: `mode = \"{mode}\"`"),
        ));
    }
    Err(syn::Error::new_spanned(&value, EXPECTED))
}

/// An example of `keys`, for the messages.
const KEYS_EXAMPLE: &str = "`keys = [\"acct:{from}\", \"acct:{to}\"]`";

/// Parses `= [...]` as far as syntax goes: a bracketed, comma-separated list (a trailing comma
/// allowed), whose elements are checked later. Anything else, a missing value included, is an
/// error on the offending token (the value, or the name when there is none) saying what is
/// accepted; a lone string literal is shown in brackets.
fn list_value(input: ParseStream<'_>, name_span: Span) -> syn::Result<ExprArray> {
    let expected =
        format!("`keys` takes a list of string literals in brackets, e.g. {KEYS_EXAMPLE}");
    if input.is_empty() {
        return Err(syn::Error::new(name_span, expected));
    }
    input.parse::<Token![=]>()?;
    if input.is_empty() {
        return Err(syn::Error::new(name_span, expected));
    }
    if input.peek(syn::token::Bracket) {
        return input.parse();
    }
    let value: Expr = input.parse()?;
    if let Expr::Lit(syn::ExprLit {
        lit: Lit::Str(key), ..
    }) = &value
    {
        return Err(syn::Error::new_spanned(
            &value,
            format!(
                "`keys` takes a list in brackets: `keys = [{}]`, or `key = {}` for one lock",
                key.token(),
                key.token()
            ),
        ));
    }
    Err(syn::Error::new_spanned(&value, expected))
}

impl Parse for LockArgs {
    /// Reads the arguments one comma-separated piece at a time, so that an argument that does
    /// not parse is reported and the others are still read and checked.
    fn parse(input: ParseStream<'_>) -> syn::Result<Self> {
        let mut args = Self::default();
        while !input.is_empty() {
            let piece = input.step(|cursor| {
                let mut rest = *cursor;
                let mut tokens = TokenStream::new();
                while let Some((tree, next)) = rest.token_tree() {
                    if matches!(&tree, TokenTree::Punct(punct) if punct.as_char() == ',') {
                        return Ok((tokens, next));
                    }
                    tokens.extend([tree]);
                    rest = next;
                }
                Ok((tokens, rest))
            })?;
            if piece.is_empty() {
                continue;
            }
            match syn::parse2::<Arg>(piece) {
                Ok(arg) => args.record(arg),
                Err(error) => args.errors.push(error),
            }
        }
        args.check_together();
        Ok(args)
    }
}

impl LockArgs {
    /// The rules about the arguments taken together, checked once every one is read: `key` or
    /// `keys` is required, and `key` and `keys`, `fair` and `mode`, `keys` and `fair`, `keys`
    /// and `mode` cannot go together. A conflict is reported on each of its arguments (each slot
    /// keeps the name as written), whatever their values.
    fn check_together(&mut self) {
        if !self.key.is_taken() && !self.keys.is_taken() {
            self.errors.push(syn::Error::new(
                Span::call_site(),
                "missing `key` or `keys`: name the lock, e.g. `#[distribute_lock(key = \"stock:{product_id}\")]`, or the locks to take together, e.g. `#[distribute_lock(keys = [\"acct:{from}\", \"acct:{to}\"])]`",
            ));
        }
        let conflicts = [
            (
                self.key.given(),
                self.keys.given(),
                "`key` and `keys` are mutually exclusive: `key` takes one lock, `keys` a multi-lock of several; put every key in `keys`, or remove `keys`",
            ),
            (
                self.fair.given(),
                self.mode.given(),
                "`fair` and `mode` are mutually exclusive: `fair` picks the fair lock, `mode` the read-write lock, which has no fair variant; remove one of them",
            ),
            (
                self.keys.given(),
                self.fair.given(),
                "`keys` and `fair` are mutually exclusive: `keys` takes a multi-lock of reentrant locks, which has no fair variant; remove one of them",
            ),
            (
                self.keys.given(),
                self.mode.given(),
                "`keys` and `mode` are mutually exclusive: `keys` takes a multi-lock of reentrant locks, which has no read-write mode; remove one of them",
            ),
        ];
        for (first, second, message) in conflicts {
            if let (Some(first), Some(second)) = (first, second) {
                for name in [first, second] {
                    self.errors.push(syn::Error::new_spanned(name, message));
                }
            }
        }
    }

    fn record(&mut self, arg: Arg) {
        let errors = &mut self.errors;
        match arg {
            Arg::Key(name, literal) => self.key.set("key", name.span, Some(literal), errors),
            Arg::Malformed(name, span, error) => {
                errors.push(error);
                match name {
                    "keys" => self.keys.set(name, span, None, errors),
                    _ => self.key.set(name, span, None, errors),
                }
            }
            Arg::Keys(name, list) => {
                let keys = key_literals(&list, errors);
                self.keys.set("keys", name.span, keys, errors);
            }
            Arg::Wait(name, literal) => {
                let value = positive_duration("wait", &literal, errors);
                self.wait.set("wait", name.span, value, errors);
            }
            Arg::Lease(name, literal) => {
                let value = positive_duration("lease", &literal, errors);
                self.lease.set("lease", name.span, value, errors);
            }
            Arg::Client(name, expr) => self.client.set("client", name.span, Some(expr), errors),
            Arg::OnLeaseLost(name, literal) => {
                let policy = match literal.value().as_str() {
                    "abort" => Some(LeaseLostPolicy::Abort),
                    "continue" => Some(LeaseLostPolicy::Continue),
                    other => {
                        errors.push(syn::Error::new(
                            literal.span(),
                            format!(
                                "unknown `on_lease_lost` policy `{other}`; expected \"abort\" (stop the body and return `LockError::LeaseLost`) or \"continue\" (let it finish)"
                            ),
                        ));
                        None
                    }
                };
                self.on_lease_lost
                    .set("on_lease_lost", name.span, policy, errors);
            }
            Arg::Fair(name, literal) => self.fair.set("fair", name.span, Some(literal), errors),
            Arg::Crate(name, literal) => {
                let path = literal.parse::<syn::Path>().map_err(|_| {
                    errors.push(syn::Error::new(
                        literal.span(),
                        format!(
                            "`crate = \"{}\"` is not a path; name the path `lock-runtime` is reached by, e.g. `crate = \"::locks\"` for a dependency renamed `locks`, or `crate = \"platform::lock\"` for a re-export",
                            literal.value()
                        ),
                    ));
                });
                self.krate.set("crate", name.span, path.ok(), errors);
            }
            Arg::Mode(name, literal) => {
                let mode = match literal.value().as_str() {
                    "read" => Some(LockMode::Read),
                    "write" => Some(LockMode::Write),
                    other => {
                        errors.push(syn::Error::new_spanned(
                            &literal,
                            format!(
                                "unknown `mode = \"{other}\"`; expected \"read\" (the read lock, shared with other readers) or \"write\" (the write lock, exclusive)"
                            ),
                        ));
                        None
                    }
                };
                self.mode.set("mode", name.span, mode, errors);
            }
        }
    }
}

/// The string literals of `keys = [...]`; an element that is not one is an error on it, and an
/// empty list an error on its brackets (and no keys).
fn key_literals(list: &ExprArray, errors: &mut Errors) -> Option<Vec<LitStr>> {
    if list.elems.is_empty() {
        errors.push(syn::Error::new_spanned(
            list,
            format!(
                "`keys = []` names no lock: list at least one key, e.g. {KEYS_EXAMPLE}, or use `key` for one lock"
            ),
        ));
        return None;
    }
    let mut literals = Vec::with_capacity(list.elems.len());
    for element in &list.elems {
        match element {
            Expr::Lit(syn::ExprLit {
                lit: Lit::Str(literal),
                ..
            }) => literals.push(literal.clone()),
            other => errors.push(syn::Error::new_spanned(
                other,
                format!(
                    "each key in `keys` is a string literal, e.g. {KEYS_EXAMPLE}; `{{param}}` in it is replaced by that parameter"
                ),
            )),
        }
    }
    Some(literals)
}

/// The shortest lease the runtime takes (`lock-runtime/src/core/lease.rs`, `MIN_LEASE`): Redis
/// counts leases in whole milliseconds.
const MIN_LEASE: Duration = Duration::from_millis(1);

/// The longest lease the runtime takes (`lock-runtime/src/core/lease.rs`, `MAX_LEASE`): 365
/// days. (humantime's `"1y"` is 365.25 days, so it is over.)
const MAX_LEASE: Duration = Duration::from_secs(365 * 24 * 60 * 60);

/// Parses a duration literal; zero, negative and unparsable values are errors on the literal, and
/// so is a `lease` outside what the runtime takes, `MIN_LEASE ..= MAX_LEASE` (a `wait` has no
/// upper bound: the runtime takes any, and one too far away to reach means "forever").
fn positive_duration(name: &str, literal: &LitStr, errors: &mut Errors) -> Option<DurationArg> {
    let text = literal.value();
    let problem = match humantime::parse_duration(text.trim()) {
        Ok(value) if name == "lease" && !value.is_zero() && value < MIN_LEASE => {
            errors.push(syn::Error::new(
                literal.span(),
                format!(
                    "`lease = \"{text}\"` is under 1 ms, the shortest lease: Redis counts leases in whole milliseconds; write at least \"1ms\""
                ),
            ));
            return None;
        }
        Ok(value) if name == "lease" && value > MAX_LEASE => {
            errors.push(syn::Error::new(
                literal.span(),
                format!(
                    "`lease = \"{text}\"` is over 365 days, the longest lease (\"1y\" is 365.25 days); write at most \"365d\", or leave `lease` out to have the watchdog renew the lock while the body runs"
                ),
            ));
            return None;
        }
        Ok(value) if !value.is_zero() => {
            return Some(DurationArg {
                value,
                literal: literal.clone(),
            });
        }
        Ok(_) if name == "lease" => "must be greater than zero; leave `lease` out to have the watchdog renew the lock while the body runs".to_owned(),
        Ok(_) => "must be greater than zero; to give up at once when the lock is taken, use a short wait such as \"10ms\"".to_owned(),
        Err(_) if text.trim_start().starts_with('-') => "cannot be negative".to_owned(),
        Err(humantime::DurationError::UnknownUnit { unit, value, .. }) if unit.is_empty() => {
            errors.push(syn::Error::new(
                literal.span(),
                if value >= 1000 && value % 1000 == 0 {
                    format!(
                        "`{name} = \"{text}\"` has no unit: write \"{value}ms\" for milliseconds (or \"{}s\")",
                        value / 1000
                    )
                } else {
                    format!(
                        "`{name} = \"{text}\"` has no unit: write \"{value}ms\" for milliseconds, or \"{value}s\" for seconds"
                    )
                },
            ));
            return None;
        }
        Err(humantime::DurationError::UnknownUnit { unit, .. }) => {
            format!("has an unknown unit `{unit}`; use ms, s, m or h")
        }
        Err(humantime::DurationError::Empty) => "is empty".to_owned(),
        Err(_) => "is not a duration".to_owned(),
    };
    errors.push(syn::Error::new(
        literal.span(),
        format!(
            "`{name} = \"{text}\"` {problem}; write durations like \"500ms\", \"5s\", \"1m30s\""
        ),
    ));
    None
}
