//! famfs FUSE test harness library.
