//! `dag!` end to end: typed outputs by name, constants, borrowing without copies, fan-in,
//! per-node settings, graph names.

use std::sync::atomic::{AtomicUsize, Ordering};

use typedag::prelude::*;

#[task]
async fn fetch(url: String) -> Result<String, std::io::Error> {
    Ok(format!("<a href='{url}/1'><a href='{url}/2'>"))
}

#[task(retries = 3, timeout = "30s")]
async fn parse(html: &str) -> Vec<String> {
    html.split("href='")
        .skip(1)
        .map(|s| s.split('\'').next().unwrap_or_default().to_owned())
        .collect()
}

#[task(priority = 10)]
async fn count(links: &[String]) -> usize {
    links.len()
}

#[task]
async fn report(links: &[String], n: &usize, title: String) -> String {
    format!("{title}: {n} links, last {}", links[n - 1])
}

#[tokio::test]
async fn design_example_runs_and_outputs_are_typed_by_name() {
    let url = "https://example.org".to_string();
    let graph = dag! {
        page  = fetch(url);
        links = parse(page);
        n     = count(links);
        text  = report(links, n, "Links".to_string());
    };
    assert_eq!(graph.len(), 4);
    let out = Runner::in_memory().run(graph).await.unwrap();
    let text: String = out.text;
    let n: usize = out.n;
    assert_eq!(text, "Links: 2 links, last https://example.org/2");
    assert_eq!(n, 2);
    assert_eq!(
        out.links,
        vec!["https://example.org/1", "https://example.org/2"]
    );
    assert!(out.page.starts_with("<a href"));
}

#[test]
fn a_task_stays_an_ordinary_async_fn() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let n = rt.block_on(count(&["a".to_owned(), "b".to_owned()]));
    assert_eq!(n, 2);
    assert_eq!(<count as Task>::NAME, "count");
    assert_eq!(<count as Task>::options().priority, Some(10));
    assert_eq!(<parse as Task>::options().retries, Some(3));
    assert_eq!(
        <parse as Task>::options().timeout,
        Some(std::time::Duration::from_secs(30))
    );
}

/// Counts its clones, to prove what is and is not copied.
#[derive(Debug, serde::Serialize, serde::Deserialize)]
#[serde(crate = "typedag::serde")]
struct Tracked {
    value: u64,
    counter: usize,
}

static CLONES: [AtomicUsize; 2] = [AtomicUsize::new(0), AtomicUsize::new(0)];

impl Clone for Tracked {
    fn clone(&self) -> Self {
        CLONES[self.counter].fetch_add(1, Ordering::SeqCst);
        Self {
            value: self.value,
            counter: self.counter,
        }
    }
}

use typedag::serde;

#[task]
async fn make(counter: usize) -> Tracked {
    Tracked { value: 7, counter }
}

#[task]
async fn borrow_it(t: &Tracked) -> u64 {
    t.value
}

#[task]
async fn own_it(t: Tracked) -> u64 {
    t.value + 1
}

#[tokio::test]
async fn borrowed_inputs_are_never_copied_and_owned_ones_are_cloned_once() {
    let graph = dag! {
        t = make(0);
        a = borrow_it(t);
        b = borrow_it(t);
        c = borrow_it(t);
    };
    let out = Runner::in_memory().run(graph).await.unwrap();
    assert_eq!((out.a, out.b, out.c), (7, 7, 7));
    assert_eq!(
        CLONES[0].load(Ordering::SeqCst),
        0,
        "a `&T` parameter must borrow the upstream output"
    );

    let graph = dag! {
        t = make(1);
        a = own_it(t);
        b = own_it(t);
    };
    let out = Runner::in_memory().run(graph).await.unwrap();
    assert_eq!((out.a, out.b), (8, 8));
    assert_eq!(
        CLONES[1].load(Ordering::SeqCst),
        2,
        "each `T` parameter gets one clone"
    );
}

#[task]
async fn square(x: u64) -> u64 {
    x * x
}

#[task]
async fn total(xs: Vec<u64>) -> u64 {
    xs.iter().sum()
}

#[task]
async fn total_ref(xs: &[u64]) -> u64 {
    xs.iter().sum()
}

#[tokio::test]
async fn fan_in_takes_a_list_of_nodes_in_order() {
    let graph = dag! {
        name = "fan-in";
        a = square(1);
        b = square(2);
        c = square(3);
        sum = total([a, b, c]);
        sum_again = total_ref([c, b, a]);
        listed = total(vec![10, 20]);
    };
    assert_eq!(graph.name(), "fan-in");
    let out = Runner::in_memory().run(graph).await.unwrap();
    assert_eq!((out.sum, out.sum_again, out.listed), (14, 14, 30));
}

#[task]
async fn noop() {}

#[tokio::test]
async fn graph_name_defaults_to_the_module_path_and_settings_apply() {
    let graph = dag! {
        a = square(4) with priority = 3, retries = 2, timeout = "1s", backoff = fixed("10ms");
        z = noop();
    };
    assert_eq!(graph.name(), module_path!());
    assert_eq!(graph.ids().collect::<Vec<_>>(), ["a", "z"]);
    let out = Runner::in_memory().run(graph).await.unwrap();
    assert_eq!(out.a, 16);
    let () = out.z;
}

#[tokio::test]
async fn constants_are_evaluated_once_when_the_graph_is_built() {
    let evaluated = AtomicUsize::new(0);
    let next = || evaluated.fetch_add(1, Ordering::SeqCst) as u64 + 5;
    let graph = dag! {
        a = square(next());
        b = square(next());
    };
    assert_eq!(evaluated.load(Ordering::SeqCst), 2);
    let out = Runner::in_memory().run(graph).await.unwrap();
    assert_eq!((out.a, out.b), (25, 36));
}

#[task]
async fn add(x: &u64, k: u64) -> u64 {
    x + k
}

#[tokio::test]
async fn many_nodes_of_one_task_take_their_own_constants_and_nodes() {
    // More nodes of `add` than have a wiring of their own: the later ones share the first's,
    // and still take their own arguments.
    let graph = dag! {
        n0 = square(1);
        n1 = add(n0, 1);
        n2 = add(n1, 2);
        n3 = add(n2, 3);
        n4 = add(n3, 4);
        n5 = add(n4, 5);
        n6 = add(n5, 6);
        n7 = add(n6, 7);
        n8 = add(n7, 8);
        n9 = add(n8, 9);
        n10 = add(n9, 10);
        n11 = add(n10, 11);
        other = add(n3, 100);
    };
    let out = Runner::in_memory().run(graph).await.unwrap();
    assert_eq!((out.n8, out.n11, out.other), (37, 67, 107));
}

#[task]
async fn greet(name: String, file: std::path::PathBuf) -> String {
    format!("hello {name} from {}", file.display())
}

#[tokio::test]
async fn string_literals_fill_owned_string_and_path_parameters() {
    let graph = dag! {
        g = greet("ada", "notes.txt");
    };
    let out = Runner::in_memory().run(graph).await.unwrap();
    assert_eq!(out.g, "hello ada from notes.txt");
}

mod elsewhere {
    use typedag::task;

    #[task]
    pub(crate) async fn shout(text: &str) -> String {
        text.to_uppercase()
    }
}

#[tokio::test]
async fn tasks_from_other_modules_keep_their_visibility() {
    let graph = dag! {
        s = elsewhere::shout("hi");
    };
    assert_eq!(Runner::in_memory().run(graph).await.unwrap().s, "HI");
}

/// An output without a `Debug` impl.
#[derive(Clone, serde::Serialize, serde::Deserialize)]
#[serde(crate = "typedag::serde")]
struct Opaque(u64);

#[task]
async fn opaque(x: &u64) -> Opaque {
    Opaque(*x)
}

#[task]
async fn is_big(x: &u64) -> bool {
    *x > 10
}

#[tokio::test]
async fn outputs_print_every_field_and_the_value_of_those_that_implement_debug() {
    let graph = dag! {
        n = square(3);
        o = opaque(n);
    };
    let out = Runner::in_memory().run(graph).await.unwrap();
    assert_eq!(format!("{out:?}"), "Outputs { n: 9, o: _ }");
    assert_eq!(out.o.0, 9);

    let graph = dag! {
        n = square(3);
        o = opaque(n);
    };
    let partial = Runner::in_memory().run_partial(graph).await.unwrap();
    assert_eq!(
        format!("{:?}", partial.outputs),
        "Partial { n: Some(9), o: _ }"
    );

    // A node with a condition is an `Option` field.
    let graph = dag! {
        n = square(3);
        big = is_big(n);
        m = square(4) if big;
    };
    let out = Runner::in_memory().run(graph).await.unwrap();
    assert_eq!(format!("{out:?}"), "Outputs { n: 9, big: false, m: None }");

    // When a node reads one with a condition, the fields' types are inferred (whether the
    // reader may not run depends on its parameter's type), and the outputs implement
    // `Debug` when every field does.
    let graph = dag! {
        n = square(3);
        big = is_big(n);
        m = square(4) if big;
        k = total([m, n]);
    };
    let out = Runner::in_memory().run(graph).await.unwrap();
    assert_eq!(
        format!("{out:?}"),
        "Outputs { n: 9, big: false, m: None, k: None }"
    );
}

#[task]
async fn upto(n: u64) -> Vec<u64> {
    (0..n).collect()
}

#[tokio::test]
async fn a_map_nodes_item_counts_can_be_named_by_their_type() {
    let graph = dag! {
        list = upto(3);
        squares = square(each list);
    };
    let run = Runner::in_memory().run_partial(graph).await.unwrap();
    let items: Option<typedag::Items> = run.report.node("squares").and_then(|n| n.items);
    let items = items.expect("a map node reports its items");
    assert_eq!(
        (items.total, items.ran, items.cached, items.failed),
        (3, 3, 0, 0)
    );
}

/// A `dag!` a `macro_rules!` writes, with the node names and a constant it was given.
macro_rules! named_by_a_macro {
    ($first:ident, $list:ident, $big:ident, $value:literal) => {
        dag! {
            $first = square($value);
            $list = upto($first);
            both = total([$first, $first]);
            squares = square(each $list);
            $big = is_big($first);
            shown = total_ref(squares) if $big;
        }
    };
}

#[tokio::test]
async fn a_dag_written_by_a_macro_may_name_its_nodes_with_the_macros_tokens() {
    let out = Runner::in_memory()
        .run(named_by_a_macro!(three, list, big, 2))
        .await
        .unwrap();
    assert_eq!((out.three, out.both), (4, 8));
    assert_eq!(out.list, [0, 1, 2, 3]);
    assert_eq!(out.squares, [0, 1, 4, 9]);
    assert!(!out.big);
    assert_eq!(out.shown, None);
}
