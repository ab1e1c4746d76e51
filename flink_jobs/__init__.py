"""Flink jobs. Each module separates ``build_pipeline`` from ``main`` so tests can inject sources and sinks."""
