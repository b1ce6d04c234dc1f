//! What a run will do, decided before anything boots: the cases (files,
//! headers, golden output), the named machines they run on, the selection
//! and shards, and the schedule of boot groups and trials.

pub mod case;
pub mod schedule;
pub mod select;
pub mod topologies;
