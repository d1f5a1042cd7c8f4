"""Engine: method registry, metrics, readers and writers, problem builders, benchmarks."""
