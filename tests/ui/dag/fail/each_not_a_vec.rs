use typedag::prelude::*;

#[task]
async fn count(n: u64) -> u64 {
    n
}

#[task]
async fn double(x: &u64) -> u64 {
    x * 2
}

#[tokio::main]
async fn main() -> Result<(), typedag::Error> {
    let graph = dag! {
        n = count(3);
        xs = double(each n);
    };
    let out = Runner::new().run(graph).await?;
    println!("{:?}", out.xs);
    Ok(())
}
