//! The `TYPEDAG_*` environment variables, which change a runner's defaults without code.

use super::Runner;
use crate::error::EnvError;
use crate::store::{Address, STORE_VAR, hide_password};

impl Runner {
    pub(super) fn read_env(&mut self, get: impl Fn(&str) -> Option<String>) {
        let mut bad = |var: &'static str, value: &str, expected: &'static str| {
            self.env_error.get_or_insert(EnvError {
                var,
                value: value.to_owned(),
                expected,
            });
        };
        if let Some(v) = get("TYPEDAG_CONCURRENCY") {
            match v.trim().parse::<usize>() {
                Ok(n) if n >= 1 => self.concurrency = n,
                _ => bad(
                    "TYPEDAG_CONCURRENCY",
                    &v,
                    "a whole number of tasks, 1 or more",
                ),
            }
        }
        if let Some(v) = get("TYPEDAG_RETRIES") {
            match v.trim().parse::<u32>() {
                Ok(n) => self.defaults.retries = n,
                Err(_) => bad("TYPEDAG_RETRIES", &v, "a whole number of retries, like 3"),
            }
        }
        if let Some(v) = get("TYPEDAG_TIMEOUT") {
            match dag_duration::parse(&v) {
                Ok(d) => self.defaults.timeout = Some(d),
                Err(_) => bad("TYPEDAG_TIMEOUT", &v, dag_duration::EXPECTED),
            }
        }
        if let Some(v) = get(STORE_VAR) {
            match Address::parse(&v) {
                Ok(address) => self.default_store = address,
                // A database address may hold a password: the message shows `***`.
                Err(e) => bad(STORE_VAR, &hide_password(&v), e.expected()),
            }
        }
        if let Some(v) = get("TYPEDAG_RUN") {
            if v.trim().is_empty() {
                bad(
                    "TYPEDAG_RUN",
                    &v,
                    "the name of a distributed run, like nightly-2026-11-23",
                );
            } else {
                self.shared_run = Some(v.trim().to_owned());
            }
        }
        if let Some(v) = get("TYPEDAG_FAIL_FAST") {
            match v.trim() {
                "true" | "1" => self.fail_fast = true,
                "false" | "0" => self.fail_fast = false,
                _ => bad("TYPEDAG_FAIL_FAST", &v, "true or false"),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::error::Error;
    use crate::graph::Graph;
    use crate::runner::store_choice::StoreChoice;

    fn runner_with(vars: &[(&str, &str)]) -> Runner {
        let mut r = Runner::with_defaults();
        r.store = StoreChoice::Nothing;
        r.read_env(|var| {
            vars.iter()
                .find(|(k, _)| *k == var)
                .map(|(_, v)| (*v).to_owned())
        });
        r
    }

    #[test]
    fn environment_sets_defaults() {
        let r = runner_with(&[
            ("TYPEDAG_CONCURRENCY", "7"),
            ("TYPEDAG_RETRIES", "2"),
            ("TYPEDAG_TIMEOUT", "1.5s"),
            ("TYPEDAG_FAIL_FAST", "true"),
        ]);
        assert_eq!(r.concurrency, 7);
        assert_eq!(r.defaults.retries, 2);
        assert_eq!(r.defaults.timeout, Some(Duration::from_millis(1500)));
        assert!(r.fail_fast);
        assert!(r.env_error.is_none());
        assert_eq!(
            r.concurrency(3).concurrency,
            3,
            "code wins over the environment"
        );
    }

    #[test]
    fn a_bad_value_is_a_clear_error() {
        for (var, value) in [
            ("TYPEDAG_CONCURRENCY", "0"),
            ("TYPEDAG_CONCURRENCY", "many"),
            ("TYPEDAG_RETRIES", "-1"),
            ("TYPEDAG_TIMEOUT", "30"),
            ("TYPEDAG_FAIL_FAST", "yes"),
            ("TYPEDAG_RUN", " "),
            ("TYPEDAG_STORE", ""),
        ] {
            let r = runner_with(&[(var, value)]);
            let e = Error::Env(r.env_error.clone().expect("a bad value is caught"));
            let text = e.to_string();
            assert!(
                text.contains(var) && text.contains(&format!("{value:?}")),
                "{text}"
            );
            let rt = tokio::runtime::Builder::new_current_thread()
                .build()
                .unwrap();
            let err = rt.block_on(r.run(Graph::new("env"))).unwrap_err();
            assert!(matches!(err, Error::Env(_)), "{err}");
        }
    }

    #[test]
    fn typedag_store_names_a_directory_or_a_database() {
        let r = runner_with(&[("TYPEDAG_STORE", "/var/cache/x"), ("TYPEDAG_RUN", "n-1")]);
        assert_eq!(r.default_store, Address::Dir("/var/cache/x".into()));
        assert_eq!(r.shared_run.as_deref(), Some("n-1"));
        let r = runner_with(&[("TYPEDAG_STORE", "postgres://ann:secret@db/x")]);
        if cfg!(feature = "postgres") {
            assert_eq!(
                r.default_store,
                Address::Postgres("postgres://ann:secret@db/x".into())
            );
            assert!(r.env_error.is_none());
        } else {
            let text = Error::Env(r.env_error.clone().expect("refused")).to_string();
            assert!(
                text.contains("without typedag's `postgres` feature"),
                "{text}"
            );
            assert!(
                !text.contains("secret") && text.contains("ann:***@db"),
                "the message shows the password: {text}"
            );
        }
    }
}
