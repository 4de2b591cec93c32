use typedag::prelude::*;

#[task]
async fn count(n: u64) -> u64 {
    n
}

#[task]
async fn notify(x: &u64) -> String {
    format!("{x}")
}

#[tokio::main]
async fn main() -> Result<(), typedag::Error> {
    let graph = dag! {
        n = count(3);
        alert = notify(n) if n;
    };
    let out = Runner::new().run(graph).await?;
    println!("{:?}", out.alert);
    Ok(())
}
