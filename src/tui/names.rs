//! Names a person writes in a file (keymap actions, theme slots) as enums: each knows its
//! name, parses from it and deserialises with serde; `Known` keeps a name this build does
//! not know as written, so one bad entry is warned about (with its line) and skipped
//! instead of failing the whole file.

use std::str::FromStr;

use serde::{Deserialize, Deserializer};

/// An enum of names, one list: the variants with the name each is written as, `ALL`,
/// `name()`, `FromStr` and serde's `Deserialize` (which says the names it takes).
macro_rules! named_enum {
    ($(#[$doc:meta])* pub enum $ty:ident { $($variant:ident = $name:literal,)* }) => {
        $(#[$doc])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub enum $ty {
            $($variant,)*
        }

        impl $ty {
            pub const ALL: &[$ty] = &[$($ty::$variant,)*];

            /// As a file writes it.
            pub fn name(self) -> &'static str {
                match self {
                    $($ty::$variant => $name,)*
                }
            }
        }

        impl From<$ty> for &'static str {
            fn from(v: $ty) -> &'static str {
                v.name()
            }
        }

        impl std::str::FromStr for $ty {
            type Err = String;

            fn from_str(s: &str) -> Result<$ty, String> {
                $ty::ALL.iter().copied().find(|v| v.name() == s).ok_or_else(|| {
                    let names: Vec<&str> = $ty::ALL.iter().map(|v| v.name()).collect();
                    format!("no `{s}` (one of: {})", names.join(", "))
                })
            }
        }

        impl<'de> serde::Deserialize<'de> for $ty {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<$ty, D::Error> {
                let s = String::deserialize(d)?;
                s.parse().map_err(serde::de::Error::custom)
            }
        }
    };
}
pub(crate) use named_enum;

/// A name as a file wrote it: one this build knows, or the text as written.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Known<T> {
    Yes(T),
    No(String),
}

impl<T: Copy + Into<&'static str>> Known<T> {
    /// The name as written.
    pub fn name(&self) -> &str {
        match self {
            Known::Yes(v) => (*v).into(),
            Known::No(name) => name,
        }
    }
}

impl<'de, T: FromStr> Deserialize<'de> for Known<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Known<T>, D::Error> {
        let s = String::deserialize(d)?;
        Ok(match s.parse() {
            Ok(v) => Known::Yes(v),
            Err(_) => Known::No(s),
        })
    }
}

/// The line (from 1) that byte `offset` of `text` is on, for warnings a person can find.
pub fn line_of(text: &str, offset: usize) -> usize {
    text.get(..offset).unwrap_or(text).matches('\n').count() + 1
}

#[cfg(test)]
mod tests {
    use super::*;

    named_enum! {
        /// Two names, for the tests.
        pub enum Pet {
            Cat = "cat",
            Dog = "dog.big",
        }
    }

    #[test]
    fn names_parse_print_and_deserialise() {
        assert_eq!("dog.big".parse::<Pet>(), Ok(Pet::Dog));
        assert_eq!(Pet::Cat.name(), "cat");
        let e = "cow".parse::<Pet>().unwrap_err();
        assert!(e.contains("no `cow`") && e.contains("cat, dog.big"), "{e}");
        #[derive(Deserialize)]
        struct F {
            a: Known<Pet>,
            b: Known<Pet>,
        }
        let f: F = toml::from_str("a = \"cat\"\nb = \"cow\"\n").unwrap();
        assert_eq!((f.a, f.b), (Known::Yes(Pet::Cat), Known::No("cow".into())));
    }

    #[test]
    fn lines_count_from_one() {
        let text = "a\nb\nc";
        assert_eq!(line_of(text, 0), 1);
        assert_eq!(line_of(text, 2), 2);
        assert_eq!(line_of(text, 4), 3);
        assert_eq!(line_of(text, 99), 3);
    }
}
