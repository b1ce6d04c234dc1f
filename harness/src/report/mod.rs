//! The report stage: the results directory with summary.json and JUnit
//! (`results`), cases as libtest trials (`trials`) and progress lines
//! (`ui`). It writes down verdicts; it never decides one.

pub mod baseline;
pub mod coverage;
pub mod kcidb;
pub mod merge;
pub mod notrun;
pub mod record;
pub mod repeat;
pub mod results;
pub mod timing;
pub mod trials;
pub mod ui;
