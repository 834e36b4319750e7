"""Benchmarks of the platform's hot paths, each beside a ceiling measured in the same run (`make bench`)."""
