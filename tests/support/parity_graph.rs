//! A three-node graph whose runs the cache tests follow, in the embedded store and in
//! PostgreSQL alike: `number` -> `even` -> `text`.

use typedag::prelude::*;

#[task]
pub async fn load(n: u64) -> u64 {
    n
}

#[task]
pub async fn parity(x: &u64) -> bool {
    x.is_multiple_of(2)
}

#[task]
pub async fn describe(even: &bool, label: String) -> String {
    format!("{label}: {}", if *even { "even" } else { "odd" })
}

/// The graph under test; a macro because a `dag!` graph's output struct is local to it.
macro_rules! graph {
    ($n:expr, $label:expr) => {{
        let (n, label): (u64, String) = ($n, $label.to_owned());
        dag! {
            name = "parity";
            number = load(n);
            even   = parity(number);
            text   = describe(even, label);
        }
    }};
}
pub(crate) use graph;
