//! The merge queue, the only writer of main. Arrives with issue 5.
