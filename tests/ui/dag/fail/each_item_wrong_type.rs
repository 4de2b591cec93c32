use typedag::prelude::*;

#[task]
async fn files() -> Vec<String> {
    vec!["a.txt".to_owned()]
}

#[task]
async fn double(x: &u64) -> u64 {
    x * 2
}

#[tokio::main]
async fn main() -> Result<(), typedag::Error> {
    let graph = dag! {
        names = files();
        xs = double(each names);
    };
    let out = Runner::new().run(graph).await?;
    println!("{:?}", out.xs);
    Ok(())
}
