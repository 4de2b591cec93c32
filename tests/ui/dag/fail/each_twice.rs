use typedag::prelude::*;

#[task]
async fn numbers() -> Vec<u64> {
    vec![1, 2]
}

#[task]
async fn add(x: &u64, y: &u64) -> u64 {
    x + y
}

#[tokio::main]
async fn main() -> Result<(), typedag::Error> {
    let graph = dag! {
        a = numbers();
        b = numbers();
        sums = add(each a, each b);
    };
    let out = Runner::new().run(graph).await?;
    println!("{:?}", out.sums);
    Ok(())
}
