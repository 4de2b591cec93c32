use typedag::prelude::*;

#[task]
async fn start() -> u64 {
    1
}

#[allow(non_camel_case_types)]
struct helper;

#[tokio::main]
async fn main() -> Result<(), typedag::Error> {
    let graph = dag! {
        t = start();
        h = helper(t);
        twice = helper(h);
        n = u64(t);
    };
    let out = Runner::in_memory().run(graph).await?;
    println!("{:?} {:?} {:?}", out.h, out.twice, out.n);
    Ok(())
}
