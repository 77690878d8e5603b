//! Generates the locked function.
//!
//! ```text
//! #[distribute_lock(key = "stock:{product_id}", wait = "5s", lease = "3s")]
//! async fn decrease_stock(product_id: u64, qty: u32) -> Result<u32, StockError> { BODY }
//! ```
//!
//! becomes the same signature around
//!
//! ```text
//! {
//!     let __lock_call = ::lock_runtime::__private::LockedCall {
//!         client, lock: LockKind::Exclusive(format!("stock:{}", product_id)),
//!         label: "stock:{product_id}", wait, lease, on_lease_lost,
//!     };
//!     __lock_call.run(async move {
//!         if let Some(__lock_ret) = None::<Result<u32, StockError>> { return __lock_ret; }
//!         BODY
//!     }).await
//! }
//! ```
//!
//! `LockKind` names the lock and carries its formatted name: `Exclusive`, `Fair`, `Read` or
//! `Write` with the name of `key`, or `Multi(vec![format!(..), ..])` with one name per template of
//! `keys = [...]`; `label` is the template as written, the lock's metrics label. The keys are formatted before the body's `async move` block takes the
//! parameters. The body is a future that does not run until the lock is held; `run` races it
//! against lease loss and releases the lock on every exit. The never-taken `return` fixes the
//! block's output type to the declared return type, so `?` converts errors into it and type
//! errors point at the user's code.

use proc_macro2::{Span, TokenStream};
use quote::{ToTokens, quote, quote_spanned};
use syn::{FnArg, ItemFn, LitStr, Pat, ReturnType, Type, spanned::Spanned};

use crate::{
    attr::{DurationArg, Errors, LeaseLostPolicy, LockArgs, LockMode},
    template::KeyTemplate,
};

/// The attribute's entry point: the rewritten function, or the original function followed by
/// every error found, so IDEs keep seeing the function while the errors are fixed.
pub(crate) fn distribute_lock(args: TokenStream, item: TokenStream) -> TokenStream {
    let function: ItemFn = match syn::parse2(item.clone()) {
        Ok(function) => function,
        Err(_) => {
            let error = syn::Error::new(
                Span::call_site(),
                "#[distribute_lock] goes on an `async fn` with a body",
            );
            return with_error(item, &error);
        }
    };
    let expanded = syn::parse2::<LockArgs>(args).and_then(|args| expand(args, &function));
    match expanded {
        Ok(tokens) => tokens,
        Err(error) => with_error(function.into_token_stream(), &error),
    }
}

fn with_error(item: TokenStream, error: &syn::Error) -> TokenStream {
    let error = error.to_compile_error();
    quote!(#item #error)
}

fn expand(mut args: LockArgs, function: &ItemFn) -> syn::Result<TokenStream> {
    let mut errors = std::mem::take(&mut args.errors);
    let signature = &function.sig;
    if signature.asyncness.is_none() {
        // `#[async_trait]` on the impl expands first and leaves a method returning a boxed
        // future: one error saying so, not one about its return type too.
        if returns_boxed_future(signature) {
            return Err(syn::Error::new_spanned(
                signature.fn_token,
                "#[distribute_lock] needs an `async fn`, and this method returns a boxed future, as `#[async_trait]` rewrites the methods of its impl: put #[distribute_lock] on an inherent `async fn` and call that from the trait method",
            ));
        }
        errors.push(syn::Error::new_spanned(
            signature.fn_token,
            "#[distribute_lock] needs an `async fn`: the lock is awaited before the body runs",
        ));
    }
    let output = result_type(signature, &mut errors);
    let lock = lock_kind(&args, signature, &mut errors);
    let (Some(output), Some(lock)) = (output, lock) else {
        return Err(errors.into_error());
    };
    errors.into_result()?;

    // `run` requires `E: From<LockError>`: an error type without it is reported once, at the
    // `E` the user wrote, so the whole call chain is located there.
    let error_span = error_type_span(output);
    let call = syn::Ident::new("__lock_call", Span::mixed_site().located_at(error_span));
    let ret = syn::Ident::new("__lock_ret", Span::mixed_site());
    // A Redlock takes the exclusive lock only: the other kinds ask for a `LockClient`.
    let exclusive = args.keys.get().is_none()
        && args.mode.get().is_none()
        && !args.fair.get().is_some_and(|fair| fair.value);
    // Where `lock-runtime` is: `::lock_runtime`, unless `crate = ".."` says otherwise.
    let krate = args
        .krate
        .get()
        .map_or_else(|| quote!(::lock_runtime), ToTokens::to_token_stream);
    let client = match args.client.get() {
        Some(expr) => {
            let source = if exclusive {
                quote!(client)
            } else {
                quote!(family_client)
            };
            let client = quote_spanned!(expr.span()=> #krate::__private::#source(&(#expr)));
            quote!(::core::option::Option::Some(#client))
        }
        None => quote!(::core::option::Option::None),
    };
    let wait = args.wait.get().map_or_else(
        || duration(std::time::Duration::from_secs(5)),
        DurationArg::to_tokens,
    );
    let lease = match args.lease.get() {
        Some(lease) => {
            let lease = lease.to_tokens();
            quote!(::core::option::Option::Some(#lease))
        }
        None => quote!(::core::option::Option::None),
    };
    let label = metrics_label(&args);
    let policy = match args.on_lease_lost.get() {
        Some(LeaseLostPolicy::Continue) => quote!(Continue),
        Some(LeaseLostPolicy::Abort) | None => quote!(Abort),
    };
    // The body's statements, not its block: a block as the last expression of the `async`
    // block would draw `unused_braces` on a one-expression body, in the user's crate.
    let body = &function.block.stmts;

    // `impl Trait` may not be named in a turbofish: the body's type stands in for it there.
    let output = inferred_impl_traits(output);
    let run_body = quote_spanned! {error_span=>
        #call.run(async move {
            if let ::core::option::Option::Some(#ret) = ::core::option::Option::None::<#output> {
                #[allow(unreachable_code)]
                return #ret;
            }
            #(#body)*
        })
        .await
    };
    // syn keeps a body's inner attributes (`#![allow(..)]`) with the function's outer ones:
    // they go back inside, where they apply to the whole body, generated code included.
    let (outer, inner): (Vec<_>, Vec<_>) = function
        .attrs
        .iter()
        .partition(|attr| matches!(attr.style, syn::AttrStyle::Outer));
    let block = quote! {
        {
            #(#inner)*
            let #call = #krate::__private::LockedCall {
                client: #client,
                lock: #krate::__private::LockKind::#lock,
                label: #label,
                wait: #wait,
                lease: #lease,
                on_lease_lost: #krate::__private::OnLeaseLost::#policy,
            };
            #run_body
        }
    };
    let ItemFn { vis, sig, .. } = function;
    Ok(quote!(#(#outer)* #vis #sig #block))
}

/// The variant of `LockKind` the call takes, with its names formatted: `Multi(vec![..])` for
/// `keys`, otherwise `Exclusive`, `Fair`, `Read` or `Write` of `key`. Every template given is
/// checked, each error reported on its literal; `None` once an error is pushed.
fn lock_kind(
    args: &LockArgs,
    signature: &syn::Signature,
    errors: &mut Errors,
) -> Option<TokenStream> {
    let parameters = bound_names(signature);
    let fn_name = signature.ident.to_string();
    let mut template = |literal: &LitStr| {
        KeyTemplate::parse(literal, &fn_name, &parameters)
            .map_err(|error| errors.push(error))
            .ok()
    };
    let key = args.key.get().map(&mut template);
    let keys = args
        .keys
        .get()
        .map(|literals| literals.iter().map(&mut template).collect::<Vec<_>>());
    // `key` with `keys`, and `keys` with `fair` or `mode`, were refused while parsing.
    if let Some(keys) = keys {
        let names = keys
            .iter()
            .map(|key| key.as_ref().map(KeyTemplate::to_format_call))
            .collect::<Option<Vec<_>>>()?;
        return Some(quote!(Multi(::std::vec![#(#names),*])));
    }
    let name = key??.to_format_call();
    // `fair` with `mode` was refused while parsing.
    let kind = match (args.mode.get(), args.fair.get()) {
        (Some(LockMode::Read), _) => quote!(Read),
        (Some(LockMode::Write), _) => quote!(Write),
        (None, Some(fair)) if fair.value => quote!(Fair),
        (None, _) => quote!(Exclusive),
    };
    Some(quote!(#kind(#name)))
}

/// The lock's metrics label: its key template as written (`"stock:{product_id}"`), or the
/// templates of `keys` joined by `,`. Bounded, unlike the names formatted from them.
fn metrics_label(args: &LockArgs) -> String {
    match (args.keys.get(), args.key.get()) {
        (Some(keys), _) => keys.iter().map(LitStr::value).collect::<Vec<_>>().join(","),
        (None, Some(key)) => key.value(),
        (None, None) => String::new(),
    }
}

/// The declared return type if it is a `Result`; otherwise an error saying what is needed.
fn result_type<'a>(signature: &'a syn::Signature, errors: &mut Errors) -> Option<&'a Type> {
    const NEEDED: &str = "#[distribute_lock] functions must return `Result<T, E>` with `E: From<lock_runtime::LockError>`, so a lock that cannot be taken can be returned as an error";
    match &signature.output {
        ReturnType::Type(_, ty) if is_result(ty) => Some(ty),
        ReturnType::Type(_, ty) => {
            errors.push(syn::Error::new_spanned(ty, NEEDED));
            None
        }
        ReturnType::Default => {
            errors.push(syn::Error::new(
                signature.paren_token.span.close(),
                format!(
                    "{NEEDED}; add a return type such as `-> Result<(), lock_runtime::LockError>`"
                ),
            ));
            None
        }
    }
}

/// Whether the function returns `Pin<Box<dyn Future ..>>` (by any path to `Pin`), as the methods
/// of an `#[async_trait]` impl do once that macro rewrote them.
fn returns_boxed_future(signature: &syn::Signature) -> bool {
    let ReturnType::Type(_, ty) = &signature.output else {
        return false;
    };
    let Some(boxed) = only_type_argument(ty, "Pin") else {
        return false;
    };
    let Some(Type::TraitObject(object)) = only_type_argument(boxed, "Box") else {
        return false;
    };
    object.bounds.iter().any(|bound| {
        matches!(bound, syn::TypeParamBound::Trait(bound)
            if bound.path.segments.last().is_some_and(|segment| segment.ident == "Future"))
    })
}

/// `T` of a type written `<path>::Name<T>`.
fn only_type_argument<'a>(ty: &'a Type, name: &str) -> Option<&'a Type> {
    let Type::Path(path) = ty else {
        return None;
    };
    let segment = path.path.segments.last()?;
    if segment.ident != name {
        return None;
    }
    let syn::PathArguments::AngleBracketed(arguments) = &segment.arguments else {
        return None;
    };
    arguments.args.iter().find_map(|argument| match argument {
        syn::GenericArgument::Type(ty) => Some(ty),
        _ => None,
    })
}

/// Where the error type of `Result<T, E>` is written: `E`, or the whole type for an alias such as
/// `io::Result<T>`.
fn error_type_span(output: &Type) -> Span {
    if let Type::Path(path) = output
        && let Some(segment) = path.path.segments.last()
        && let syn::PathArguments::AngleBracketed(arguments) = &segment.arguments
        && arguments.args.len() == 2
        && let Some(error) = arguments.args.last()
    {
        return error.span();
    }
    output.span()
}

/// `Result<..>`, `io::Result<..>`, `anyhow::Result<..>`, `StockResult<..>`: a path whose last
/// segment is named `Result` or ends with it.
fn is_result(ty: &Type) -> bool {
    match ty {
        Type::Path(path) => path
            .path
            .segments
            .last()
            .is_some_and(|segment| segment.ident.to_string().ends_with("Result")),
        Type::Group(group) => is_result(&group.elem),
        Type::Paren(paren) => is_result(&paren.elem),
        _ => false,
    }
}

/// The names a key template may use: `self`, and every name the parameters bind, those of
/// patterns included (`Path(id): Path<u64>` binds `id`, `(a, b): (u64, u64)` binds `a` and `b`).
fn bound_names(signature: &syn::Signature) -> Vec<String> {
    let mut names = Vec::new();
    for input in &signature.inputs {
        match input {
            FnArg::Receiver(_) => names.push("self".to_owned()),
            FnArg::Typed(typed) => bindings(&typed.pat, &mut names),
        }
    }
    names
}

/// Adds the names `pattern` binds to `names`.
fn bindings(pattern: &Pat, names: &mut Vec<String>) {
    match pattern {
        Pat::Ident(binding) => {
            names.push(binding.ident.to_string());
            if let Some((_, inner)) = &binding.subpat {
                bindings(inner, names);
            }
        }
        Pat::Tuple(tuple) => tuple.elems.iter().for_each(|elem| bindings(elem, names)),
        Pat::TupleStruct(tuple) => tuple.elems.iter().for_each(|elem| bindings(elem, names)),
        Pat::Struct(fields) => fields
            .fields
            .iter()
            .for_each(|field| bindings(&field.pat, names)),
        Pat::Slice(slice) => slice.elems.iter().for_each(|elem| bindings(elem, names)),
        Pat::Reference(reference) => bindings(&reference.pat, names),
        Pat::Paren(paren) => bindings(&paren.pat, names),
        Pat::Type(typed) => bindings(&typed.pat, names),
        // Every alternative binds the same names.
        Pat::Or(or) => {
            if let Some(first) = or.cases.first() {
                bindings(first, names);
            }
        }
        _ => {}
    }
}

/// `output` with every `impl Trait` in it replaced by `_`.
fn inferred_impl_traits(output: &Type) -> Type {
    let mut output = output.clone();
    infer_impl_traits(&mut output);
    output
}

fn infer_impl_traits(ty: &mut Type) {
    match ty {
        Type::ImplTrait(impl_trait) => {
            let span = impl_trait.impl_token.span;
            *ty = syn::parse_quote_spanned!(span=> _);
        }
        Type::Path(path) => infer_in_path(&mut path.path),
        Type::TraitObject(object) => {
            for bound in &mut object.bounds {
                if let syn::TypeParamBound::Trait(bound) = bound {
                    infer_in_path(&mut bound.path);
                }
            }
        }
        Type::Tuple(tuple) => tuple.elems.iter_mut().for_each(infer_impl_traits),
        Type::Reference(reference) => infer_impl_traits(&mut reference.elem),
        Type::Ptr(pointer) => infer_impl_traits(&mut pointer.elem),
        Type::Array(array) => infer_impl_traits(&mut array.elem),
        Type::Slice(slice) => infer_impl_traits(&mut slice.elem),
        Type::Paren(paren) => infer_impl_traits(&mut paren.elem),
        Type::Group(group) => infer_impl_traits(&mut group.elem),
        _ => {}
    }
}

/// [`infer_impl_traits`] in the generic arguments of every segment of `path`, associated type
/// bindings included (`Box<dyn Iterator<Item = impl Display>>`).
fn infer_in_path(path: &mut syn::Path) {
    for segment in &mut path.segments {
        if let syn::PathArguments::AngleBracketed(arguments) = &mut segment.arguments {
            for argument in &mut arguments.args {
                match argument {
                    syn::GenericArgument::Type(ty) => infer_impl_traits(ty),
                    syn::GenericArgument::AssocType(binding) => infer_impl_traits(&mut binding.ty),
                    _ => {}
                }
            }
        }
    }
}

impl DurationArg {
    fn to_tokens(&self) -> TokenStream {
        let tokens = duration(self.value);
        let span = self.literal.span();
        quote_spanned!(span=> #tokens)
    }
}

fn duration(value: std::time::Duration) -> TokenStream {
    let seconds = value.as_secs();
    let nanos = value.subsec_nanos();
    quote!(::core::time::Duration::new(#seconds, #nanos))
}
