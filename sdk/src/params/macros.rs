//! `params!` and `param_choice!`: a parameter struct and its schema from one declaration.

/// Declares a detector's parameter struct together with its schema.
///
/// Each field is `name: Type = default` with optional `, min >= x` / `, min > x` and
/// `, max <= y` / `, max < y`, ended by `;`. Doc comments become the schema's docs.
/// Types: `f64`, `i64`, `u32`, `usize`, `bool`, [`Window`](crate::Window),
/// `std::time::Duration`, or an enum declared with [`param_choice!`](crate::param_choice!).
#[macro_export]
macro_rules! params {
    (
        $(#[$meta:meta])*
        $vis:vis struct $name:ident {
            $(
                $(#[doc = $doc:literal])*
                $field:ident : $ty:ty = $default:expr
                $(, min $minop:tt $minv:literal)?
                $(, max $maxop:tt $maxv:literal)?
                ;
            )*
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, PartialEq)]
        $vis struct $name {
            $( $(#[doc = $doc])* pub $field: $ty, )*
        }

        impl ::std::default::Default for $name {
            fn default() -> Self {
                $name { $( $field: $default, )* }
            }
        }

        impl $crate::params::DetectorParams for $name {
            fn schema() -> ::std::vec::Vec<$crate::ParamSpec> {
                ::std::vec![$(
                    $crate::ParamSpec::new::<$ty>(stringify!($field), concat!($($doc, "\n"),*), &$default)
                        $(.min($crate::__param_bound!($minop $minv)))?
                        $(.max($crate::__param_bound!($maxop $maxv)))?
                ),*]
            }

            fn from_resolved(
                resolved: &$crate::params::Resolved,
            ) -> ::std::result::Result<Self, $crate::ParamError> {
                ::std::result::Result::Ok($name {
                    $( $field: resolved.get::<$ty>(stringify!($field))?, )*
                })
            }
        }
    };
}

#[doc(hidden)]
#[macro_export]
macro_rules! __param_bound {
    (>= $v:literal) => {
        $crate::params::Bound {
            value: $v as f64,
            inclusive: true,
        }
    };
    (> $v:literal) => {
        $crate::params::Bound {
            value: $v as f64,
            inclusive: false,
        }
    };
    (<= $v:literal) => {
        $crate::params::Bound {
            value: $v as f64,
            inclusive: true,
        }
    };
    (< $v:literal) => {
        $crate::params::Bound {
            value: $v as f64,
            inclusive: false,
        }
    };
}

/// Declares an enum whose variants are the words of a [`ParamKind::Choice`](crate::ParamKind::Choice) parameter.
///
/// ```
/// adr_sdk::param_choice! {
///     /// Which tail of the distribution is anomalous.
///     pub enum Side { Both = "both", Upper = "upper", Lower = "lower" }
/// }
/// ```
#[macro_export]
macro_rules! param_choice {
    (
        $(#[$meta:meta])*
        $vis:vis enum $name:ident { $( $(#[doc = $doc:literal])* $variant:ident = $word:literal ),+ $(,)? }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        $vis enum $name { $( $(#[doc = $doc])* $variant, )+ }

        impl $crate::params::ParamType for $name {
            const KIND: $crate::ParamKind = $crate::ParamKind::Choice;
            fn choices() -> &'static [&'static str] {
                &[$($word),+]
            }
            fn to_value(&self) -> $crate::ParamValue {
                match self { $( $name::$variant => $crate::ParamValue::Text($word.into()), )+ }
            }
            fn from_value(value: &$crate::ParamValue) -> ::std::option::Option<Self> {
                match value {
                    $( $crate::ParamValue::Text(t) if t == $word => ::std::option::Option::Some($name::$variant), )+
                    _ => ::std::option::Option::None,
                }
            }
        }
    };
}
