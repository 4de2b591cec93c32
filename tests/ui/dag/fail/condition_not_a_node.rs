use typedag::prelude::*;

#[task]
async fn count(n: u64) -> u64 {
    n
}

#[task]
async fn big(x: &u64) -> bool {
    *x > 2
}

#[tokio::main]
async fn main() -> Result<(), typedag::Error> {
    let graph = dag! {
        n = count(3);
        early = count(1) if large;
        never = count(2) if true;
        large = big(n);
    };
    let out = Runner::new().run(graph).await?;
    println!("{:?} {:?}", out.early, out.never);
    Ok(())
}
