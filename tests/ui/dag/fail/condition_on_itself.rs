use typedag::prelude::*;

#[task]
async fn big(n: u64) -> bool {
    n > 2
}

#[tokio::main]
async fn main() -> Result<(), typedag::Error> {
    let graph = dag! {
        a = big(1) if a;
    };
    let out = Runner::new().run(graph).await?;
    println!("{:?}", out.a);
    Ok(())
}
