//! Secret redaction. (in progress)
