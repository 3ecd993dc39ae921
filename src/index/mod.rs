//! Full-text index. (in progress)
