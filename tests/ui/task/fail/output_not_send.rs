use typedag::prelude::*;

#[task(cache = false)]
async fn counter() -> std::rc::Rc<u8> {
    std::rc::Rc::new(1)
}

fn main() {}
