use typedag::prelude::*;

#[task]
async fn count(n: u64) -> u64 {
    n
}

#[tokio::main]
async fn main() -> Result<(), typedag::Error> {
    let mut graph = Graph::new("alerts");
    let n = graph.add::<count>("n", (3,))?;
    let alert = graph.add_if::<count>("alert", (4,), &n, true)?;
    let alert = graph.keep(alert);
    let out = Runner::new().run(graph).await?;
    println!("{:?}", out.try_get(&alert));
    Ok(())
}
