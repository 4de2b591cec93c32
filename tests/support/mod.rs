//! Helpers shared by the integration tests.

pub mod items;
pub mod postgres;
pub mod temp_dir;
