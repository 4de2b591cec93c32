use typedag::prelude::*;

struct Client;

#[task]
async fn fetch(client: Res<Client>, id: u64) -> u64 {
    let _ = client;
    id
}

fn main() {
    let client = Client;
    let _graph = dag! {
        a = fetch(client, 1);
    };
}
