//! Helpers shared by the integration tests.

pub mod items;
pub mod postgres;
pub mod report;
pub mod temp_dir;
