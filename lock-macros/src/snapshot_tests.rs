//! Snapshot tests of the expansion: what `cargo expand` shows for each shape of function.
//!
//! Review a changed snapshot with `cargo insta review` (or regenerate them all with
//! `INSTA_UPDATE=always cargo test -p lock-macros` and read the diff).

use proc_macro2::TokenStream;
use quote::quote;

/// Expands `#[distribute_lock(args)] item` and pretty-prints the result.
fn expand(args: TokenStream, item: TokenStream) -> String {
    let output = crate::expand::distribute_lock(args, item);
    let file = syn::parse2::<syn::File>(output.clone())
        .unwrap_or_else(|err| panic!("the expansion does not parse as a file ({err}): {output}"));
    prettyplease::unparse(&file)
}

#[test]
fn readme_example() {
    let text = expand(
        quote!(key = "stock:{product_id}", wait = "5s", lease = "3s"),
        quote! {
            async fn decrease_stock(product_id: u64, qty: u32) -> Result<u32, StockError> {
                if qty > 10 {
                    return Err(StockError::OutOfStock);
                }
                Ok(10 - qty)
            }
        },
    );
    insta::assert_snapshot!("readme_example", text);
}

#[test]
fn defaults_only() {
    let text = expand(
        quote!(key = "nightly-report"),
        quote! {
            pub async fn nightly_report() -> Result<(), LockError> {
                Ok(())
            }
        },
    );
    insta::assert_snapshot!("defaults_only", text);
}

/// `crate = ".."`: every generated path goes through the path given.
#[test]
fn crate_path() {
    let text = expand(
        quote!(
            key = "stock:{id}",
            client = self.locks,
            crate = "platform::lock"
        ),
        quote! {
            async fn restock(&self, id: u64) -> Result<u64, LockError> {
                Ok(id)
            }
        },
    );
    assert!(!text.contains("lock_runtime"), "{text}");
    insta::assert_snapshot!("crate_path", text);
}

/// A body's inner attributes stay inside the function, where they apply to all of it.
#[test]
fn inner_attributes_stay_inside() {
    let text = expand(
        quote!(key = "stock:{product_id}"),
        quote! {
            /// Outer doc.
            async fn restock(product_id: u64) -> Result<u64, LockError> {
                #![allow(clippy::let_and_return)]
                let id = product_id;
                Ok(id)
            }
        },
    );
    insta::assert_snapshot!("inner_attributes_stay_inside", text);
}

#[test]
fn method_with_client_and_continue() {
    let text = expand(
        quote!(
            key = "account:{id}",
            client = self.locks,
            wait = "1m30s",
            lease = "500ms",
            on_lease_lost = "continue"
        ),
        quote! {
            async fn deposit(&self, id: u64, cents: u64) -> Result<u64, LockError> {
                self.balance.fetch_add(cents, Ordering::SeqCst);
                Ok(cents)
            }
        },
    );
    insta::assert_snapshot!("method_with_client_and_continue", text);
}

#[test]
fn field_placeholders() {
    let text = expand(
        quote!(key = "tenant:{self.tenant}:order:{order.id}:{ pair.0 }"),
        quote! {
            async fn pay(&self, order: Order, pair: (u32, u32)) -> Result<u64, PayError> {
                Ok(order.total + u64::from(pair.1))
            }
        },
    );
    insta::assert_snapshot!("field_placeholders", text);
}

#[test]
fn generics_where_clause_and_attributes_kept() {
    let text = expand(
        quote!(key = "{kind}:{id}", wait = "250ms"),
        quote! {
            /// Touches one entry.
            #[must_use]
            #[tracing::instrument(skip(kind))]
            pub(crate) async fn touch<'a, Id, E: From<LockError>>(
                kind: impl Display,
                id: &'a Id,
            ) -> Result<&'a Id, E>
            where
                Id: Display + Sync,
            {
                Ok(id)
            }
        },
    );
    insta::assert_snapshot!("generics_where_clause_and_attributes_kept", text);
}

#[test]
fn fair_lock() {
    let text = expand(
        quote!(key = "jobs:{queue}", fair = true, wait = "30s"),
        quote! {
            pub async fn run_next(queue: &str) -> Result<(), LockError> {
                Ok(())
            }
        },
    );
    insta::assert_snapshot!("fair_lock", text);
}

#[test]
fn read_mode() {
    let text = expand(
        quote!(key = "doc:{id}", mode = "read", wait = "1s"),
        quote! {
            pub async fn show(id: u64) -> Result<String, LockError> {
                Ok(id.to_string())
            }
        },
    );
    insta::assert_snapshot!("read_mode", text);
}

#[test]
fn write_mode() {
    let text = expand(
        quote!(
            mode = "write",
            key = "doc:{id}",
            client = self.locks,
            lease = "10s"
        ),
        quote! {
            async fn edit(&self, id: u64, text: String) -> Result<(), LockError> {
                Ok(())
            }
        },
    );
    insta::assert_snapshot!("write_mode", text);
}

#[test]
fn multi_lock_keys() {
    let text = expand(
        quote!(
            keys = ["acct:{from}", "acct:{to.id}",],
            client = self.locks,
            wait = "2s"
        ),
        quote! {
            async fn transfer(&self, from: u64, to: &Account, cents: u64) -> Result<u64, LockError> {
                Ok(cents)
            }
        },
    );
    insta::assert_snapshot!("multi_lock_keys", text);
}

/// `fair = false` is the default: the expansion is the one without `fair`.
#[test]
fn fair_false_is_the_default_lock() {
    let item = quote! {
        async fn nightly_report() -> Result<(), LockError> {
            Ok(())
        }
    };
    assert_eq!(
        expand(quote!(key = "nightly-report", fair = false), item.clone()),
        expand(quote!(key = "nightly-report"), item),
    );
}

/// Every mistake is reported, after the original function, which is emitted unchanged.
#[test]
fn errors_keep_the_original_function() {
    let text = expand(
        quote!(
            key = "stock:{product}",
            wait = "0s",
            on_lease_lost = "retry"
        ),
        quote! {
            /// Kept.
            fn decrease_stock(product_id: u64) -> u32 {
                product_id as u32
            }
        },
    );
    insta::assert_snapshot!("errors_keep_the_original_function", text);
}
