//! The key template: `"stock:{product_id}"`, `"order:{order.id}"`, `"user:{self.tenant}:{id}"`,
//! given by `key`, or once per lock by `keys`.
//!
//! Literal text, and placeholders in braces that name a parameter of the function, optionally
//! followed by field accesses. Each placeholder is formatted with `Display` at run time. Lock names
//! may not contain braces (the runtime wraps them in a Redis Cluster hash tag), so there is no
//! escape for them: every `{` opens a placeholder.

use proc_macro2::{Span, TokenStream};
use quote::{ToTokens, quote_spanned};
use syn::LitStr;

/// A checked template, ready to expand into a `format!` call.
pub(crate) struct KeyTemplate {
    /// The `format!` string: the literal text with every placeholder replaced by `{}`.
    format: String,
    /// The placeholders, in order: a parameter and its field path.
    placeholders: Vec<Vec<String>>,
    span: Span,
}

impl KeyTemplate {
    /// Parses `literal` and checks every placeholder against `parameters` (the names the function
    /// binds, `self` included).
    pub(crate) fn parse(
        literal: &LitStr,
        fn_name: &str,
        parameters: &[String],
    ) -> syn::Result<Self> {
        let text = literal.value();
        let span = literal.span();
        let error = |message: String| syn::Error::new(span, message);
        if text.trim().is_empty() {
            return Err(error(
                "a key must not be empty: name the lock, e.g. \"stock:{product_id}\"".to_owned(),
            ));
        }
        let mut format = String::new();
        let mut placeholders = Vec::new();
        let mut rest = text.as_str();
        while let Some(open) = rest.find(['{', '}']) {
            if rest[open..].starts_with('}') {
                return Err(error(format!(
                    "unmatched `}}` in key \"{text}\"; lock names cannot contain braces"
                )));
            }
            format.push_str(&rest[..open]);
            let after = &rest[open + 1..];
            let Some(close) = after.find('}') else {
                return Err(error(format!(
                    "unclosed `{{` in key \"{text}\"; a placeholder looks like `{{product_id}}`"
                )));
            };
            let inner = after[..close].trim();
            let path: Vec<String> = inner
                .split('.')
                .map(|part| part.trim().to_owned())
                .collect();
            let well_formed = path.iter().enumerate().all(|(index, part)| {
                is_identifier(part)
                    || (index > 0
                        && part.bytes().all(|byte| byte.is_ascii_digit())
                        && !part.is_empty())
            });
            if !well_formed {
                // What `format!` would take and a key does not: a name comes from `Display`
                // of what the parameters hold (a `Debug` output may change with a type's
                // version, and two services would then name different locks).
                let hint = if inner.contains(':') {
                    "; a placeholder takes no format spec: lock names use `Display`, so pass a value that displays as the name should"
                } else if inner.contains('(') {
                    "; a placeholder cannot call a method: pass the value as a parameter, or make it a field"
                } else {
                    ""
                };
                return Err(error(format!(
                    "placeholder `{{{inner}}}` in key \"{text}\" must name a parameter, like `{{product_id}}` or `{{order.id}}`{hint}"
                )));
            }
            if !parameters.contains(&path[0]) {
                let known = if parameters.is_empty() {
                    ", whose parameters bind no name".to_owned()
                } else {
                    format!("; its parameters are {}", list(parameters))
                };
                return Err(error(format!(
                    "placeholder `{{{inner}}}` names no parameter of `{fn_name}`{known}"
                )));
            }
            format.push_str("{}");
            placeholders.push(path);
            rest = &after[close + 1..];
        }
        format.push_str(rest);
        Ok(Self {
            format,
            placeholders,
            span,
        })
    }

    /// `::std::format!("stock:{}", product_id)`, spanned on the literal so a placeholder that is
    /// not `Display` is reported there.
    pub(crate) fn to_format_call(&self) -> TokenStream {
        let span = self.span;
        let format = LitStr::new(&self.format, span);
        let arguments = self.placeholders.iter().map(|path| {
            let mut tokens = TokenStream::new();
            for (index, part) in path.iter().enumerate() {
                if index > 0 {
                    tokens.extend(quote_spanned!(span=> .));
                }
                if part.bytes().all(|byte| byte.is_ascii_digit()) {
                    syn::LitInt::new(part, span).to_tokens(&mut tokens);
                } else {
                    syn::Ident::new(part, span).to_tokens(&mut tokens);
                }
            }
            tokens
        });
        quote_spanned!(span=> ::std::format!(#format #(, #arguments)*))
    }
}

fn is_identifier(text: &str) -> bool {
    let mut chars = text.chars();
    chars
        .next()
        .is_some_and(|first| first == '_' || first.is_alphabetic())
        && chars.all(|c| c == '_' || c.is_alphanumeric())
        && text != "_"
}

fn list(names: &[String]) -> String {
    names
        .iter()
        .map(|name| format!("`{name}`"))
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> syn::Result<KeyTemplate> {
        let parameters = [
            "product_id".to_owned(),
            "order".to_owned(),
            "self".to_owned(),
        ];
        KeyTemplate::parse(&LitStr::new(text, Span::call_site()), "f", &parameters)
    }

    #[test]
    fn placeholders_become_format_arguments() {
        let template =
            parse("stock:{product_id}:{ order.id }:{self.tenant}:{order.0}").expect("valid");
        assert_eq!(template.format, "stock:{}:{}:{}:{}");
        assert_eq!(
            template.placeholders,
            vec![
                vec!["product_id".to_owned()],
                vec!["order".to_owned(), "id".to_owned()],
                vec!["self".to_owned(), "tenant".to_owned()],
                vec!["order".to_owned(), "0".to_owned()],
            ]
        );
    }

    #[test]
    fn mistakes_are_explained() {
        let cases = [
            ("", "must not be empty"),
            (
                "stock:{product}",
                "names no parameter of `f`; its parameters are `product_id`",
            ),
            ("stock:{product_id", "unclosed `{`"),
            ("stock:}", "unmatched `}`"),
            ("stock:{}", "must name a parameter"),
            ("stock:{a-b}", "must name a parameter"),
            ("stock:{0}", "must name a parameter"),
            ("stock:{product_id:?}", "takes no format spec"),
            ("stock:{product_id.id()}", "cannot call a method"),
        ];
        for (text, expected) in cases {
            let message = parse(text)
                .err()
                .map(|err| err.to_string())
                .unwrap_or_default();
            assert!(message.contains(expected), "{text:?}: {message}");
        }
    }
}
