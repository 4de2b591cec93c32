use typedag::prelude::*;

#[task]
async fn double(x: &u64) -> u64 {
    x * 2
}

#[tokio::main]
async fn main() -> Result<(), typedag::Error> {
    let graph = dag! {
        a = double(1u64) with max = 5;
    };
    let out = Runner::new().run(graph).await?;
    println!("{}", out.a);
    Ok(())
}
