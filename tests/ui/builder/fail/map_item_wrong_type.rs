use typedag::prelude::*;

#[task]
async fn numbers() -> Vec<u64> {
    vec![1, 2]
}

#[task]
async fn parse(text: &str) -> usize {
    text.len()
}

#[tokio::main]
async fn main() -> Result<(), typedag::Error> {
    let mut graph = Graph::new("pages");
    let list = graph.add::<numbers>("list", ())?;
    let pages = graph.map::<parse>("pages", (each(list),))?;
    let pages = graph.keep(pages);
    let out = Runner::new().run(graph).await?;
    println!("{:?}", out.get(&pages));
    Ok(())
}
