//! Watching releases after they ship. This crate holds the delivery report (`report`): DORA
//! metrics computed from the ledger, behind `shipgate report` (seed 004's health report
//! artifact and the metrics it wished it had).

pub mod report;
