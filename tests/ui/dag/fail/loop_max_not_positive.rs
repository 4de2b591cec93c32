use typedag::prelude::*;

#[task]
async fn countdown(n: u32) -> Loop<u32, u32> {
    if n == 0 { Loop::Done(0) } else { Loop::Again(n - 1) }
}

#[tokio::main]
async fn main() -> Result<(), typedag::Error> {
    let graph = dag! {
        a = countdown(3u32) with max = 0;
        b = countdown(3u32) with max = "ten";
    };
    let out = Runner::new().run(graph).await?;
    println!("{} {}", out.a, out.b);
    Ok(())
}
