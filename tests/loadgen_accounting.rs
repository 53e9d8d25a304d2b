//! The benchmark load generator's own counting (loss after NACK recovery, freezes, time to first
//! frame, percentiles), tested on synthetic packet sequences. The code lives with the benchmarks
//! (`benches/loadgen/accounting.rs`); its tests run here, with every other test.

#[path = "../benches/loadgen/accounting.rs"]
mod accounting;
