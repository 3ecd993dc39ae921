//! Memory recall. (in progress)
