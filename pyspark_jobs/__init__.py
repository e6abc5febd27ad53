"""Spark jobs of the movie-analytics pipeline (see docs/architecture.md)."""
