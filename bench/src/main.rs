//! Benchmark harness for mobile-bff (work in progress).

fn main() {}
