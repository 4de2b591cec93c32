use typedag::prelude::*;

struct Approval {
    by: String,
}

#[task]
async fn ship(approval: &Approval) -> String {
    approval.by.clone()
}

fn main() {
    let _ = dag! {
        approve = signal::<Approval>();
        shipped = ship(approve);
    };
}
