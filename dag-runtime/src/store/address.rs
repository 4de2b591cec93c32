//! Where a store is, as people write it (`TYPEDAG_STORE`, the `typedag` command's
//! `--store`): which texts name a database and which a directory, and the default directory.

use std::path::PathBuf;
use std::sync::Arc;

use super::contract::Store;
use super::embedded::EmbeddedStore;
use super::error::StoreError;

/// The directory of the embedded store unless a program or `TYPEDAG_STORE` says otherwise,
/// relative to the working directory.
pub const DEFAULT_STORE: &str = ".typedag";

/// The environment variable that names the store.
pub const STORE_VAR: &str = "TYPEDAG_STORE";

/// What a store address names: `postgres://…` or `postgresql://…` a PostgreSQL database,
/// anything else an embedded store's directory.
///
/// ```
/// use typedag::store::Address;
///
/// let address = Address::parse("/var/cache/pipeline").unwrap();
/// assert_eq!(address, Address::Dir("/var/cache/pipeline".into()));
/// assert_eq!(Address::default(), Address::Dir(".typedag".into()));
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Address {
    /// An embedded store's directory.
    Dir(PathBuf),
    /// A PostgreSQL database's address, as given.
    Postgres(String),
}

/// Why a text is not a store address this program can use.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AddressError {
    /// The text is empty, or only spaces.
    #[error("the store address is empty: expected {}", self.expected())]
    Empty,
    /// The text names a PostgreSQL database, and this program was built without the
    /// `postgres` feature.
    #[error("cannot use the store `{}`: expected {}", hide_password(.address), self.expected())]
    NoPostgres {
        /// The address.
        address: String,
    },
}

impl AddressError {
    /// What an address should look like here, for a message that names where it was read
    /// (like [`EnvError::expected`](crate::EnvError)).
    pub fn expected(&self) -> &'static str {
        match self {
            AddressError::Empty => "a directory for the store, or a postgres:// address",
            AddressError::NoPostgres { .. } => {
                "a directory: this program was built without typedag's `postgres` feature, so it cannot use a PostgreSQL store (add `features = [\"postgres\"]` to its typedag dependency)"
            }
        }
    }
}

impl Address {
    /// Reads a store address.
    ///
    /// # Errors
    /// [`AddressError::Empty`] for an empty text; [`AddressError::NoPostgres`] for a
    /// PostgreSQL address when this program was built without the `postgres` feature.
    pub fn parse(text: &str) -> Result<Address, AddressError> {
        if text.trim().is_empty() {
            return Err(AddressError::Empty);
        }
        if !(text.starts_with("postgres://") || text.starts_with("postgresql://")) {
            return Ok(Address::Dir(PathBuf::from(text)));
        }
        if cfg!(feature = "postgres") {
            Ok(Address::Postgres(text.to_owned()))
        } else {
            Err(AddressError::NoPostgres {
                address: text.to_owned(),
            })
        }
    }

    /// The address in [`STORE_VAR`] (`TYPEDAG_STORE`), read with [`parse`](Self::parse);
    /// `None` when it is not set. A value that is not Unicode names a directory.
    pub fn from_env() -> Option<Result<Address, AddressError>> {
        let value = std::env::var_os(STORE_VAR)?;
        Some(match value.into_string() {
            Ok(text) => Address::parse(&text),
            Err(raw) => Ok(Address::Dir(PathBuf::from(raw))),
        })
    }

    /// Opens the store: [`EmbeddedStore::open`] for a directory (creating it if need be),
    /// `PostgresStore::connect` for a database.
    ///
    /// # Errors
    /// As those two; a [`StoreError::Other`] for a PostgreSQL address when this program was
    /// built without the `postgres` feature.
    pub async fn open(&self) -> Result<Arc<dyn Store>, StoreError> {
        match self {
            Address::Dir(dir) => Ok(Arc::new(EmbeddedStore::open(dir)?)),
            #[cfg(feature = "postgres")]
            Address::Postgres(url) => Ok(Arc::new(super::PostgresStore::connect(url).await?)),
            #[cfg(not(feature = "postgres"))]
            Address::Postgres(url) => Err(StoreError::Other {
                location: "PostgreSQL".to_owned(),
                message: AddressError::NoPostgres {
                    address: url.clone(),
                }
                .to_string(),
            }),
        }
    }
}

/// The address as given, with any password replaced by `***`.
pub(crate) fn hide_password(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    // The last `@` ends the user and password, which may hold one.
    let Some((auth, host)) = rest.rsplit_once('@') else {
        return url.to_owned();
    };
    match auth.split_once(':') {
        Some((user, _)) => format!("{scheme}://{user}:***@{host}"),
        None => url.to_owned(),
    }
}

impl Default for Address {
    /// [`DEFAULT_STORE`], the directory a program uses unless told otherwise.
    fn default() -> Self {
        Address::Dir(PathBuf::from(DEFAULT_STORE))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_address_names_a_database_or_a_directory() {
        assert_eq!(
            Address::parse("/var/cache/x"),
            Ok(Address::Dir("/var/cache/x".into()))
        );
        assert_eq!(
            Address::parse("postgres-cache"),
            Ok(Address::Dir("postgres-cache".into()))
        );
        assert_eq!(Address::parse(""), Err(AddressError::Empty));
        assert_eq!(Address::parse("  "), Err(AddressError::Empty));
        for url in ["postgres://ann@db/x", "postgresql://ann@db/x"] {
            if cfg!(feature = "postgres") {
                assert_eq!(Address::parse(url), Ok(Address::Postgres(url.into())));
            } else {
                let e = Address::parse(url).unwrap_err();
                assert!(
                    e.to_string()
                        .contains("without typedag's `postgres` feature"),
                    "{e}"
                );
            }
        }
    }

    #[test]
    fn a_password_is_never_shown() {
        for (url, shown) in [
            ("postgres://ann:secret@db/x", "postgres://ann:***@db/x"),
            ("postgres://ann:se@cret@db/x", "postgres://ann:***@db/x"),
            ("postgres://ann@db/x", "postgres://ann@db/x"),
            ("/var/cache/x", "/var/cache/x"),
        ] {
            assert_eq!(hide_password(url), shown);
        }
    }
}
