"""Spark jobs. Each module has ``main(argv)``; transforms are pure ``DataFrame -> DataFrame`` functions."""
