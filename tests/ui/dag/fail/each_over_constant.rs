use typedag::prelude::*;

#[task]
async fn double(x: &u64) -> u64 {
    x * 2
}

#[tokio::main]
async fn main() -> Result<(), typedag::Error> {
    let graph = dag! {
        xs = double(each vec![1, 2, 3]);
    };
    let out = Runner::new().run(graph).await?;
    println!("{:?}", out.xs);
    Ok(())
}
