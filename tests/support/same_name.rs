//! Two tasks named `load` in different modules, with the same tokens: each calls its own
//! module's `helper()`, so only their paths tell them apart.

pub mod ingest {
    use typedag::prelude::*;

    pub fn helper() -> u64 {
        1
    }

    #[task]
    pub async fn load() -> u64 {
        helper()
    }
}

pub mod backfill {
    use typedag::prelude::*;

    pub fn helper() -> u64 {
        2
    }

    #[task]
    pub async fn load() -> u64 {
        helper()
    }
}
