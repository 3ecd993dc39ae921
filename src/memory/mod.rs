//! Memory recall. (in progress)

pub mod embed;
pub mod vectors;
