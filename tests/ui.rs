//! Compile errors as a user sees them: every mistake `#[task]`, `dag!` and the builder promise
//! to catch has a case under `tests/ui/*/fail/` with its exact message in a `.stderr` file.
//! Re-bless with `TRYBUILD=overwrite cargo test --test ui` only after reading the new text.

#[test]
fn ui() {
    let t = trybuild::TestCases::new();
    t.compile_fail("tests/ui/task/fail/*.rs");
    t.compile_fail("tests/ui/dag/fail/*.rs");
    t.compile_fail("tests/ui/builder/fail/*.rs");
    t.pass("tests/ui/task/pass/*.rs");
    t.pass("tests/ui/dag/pass/*.rs");
}
