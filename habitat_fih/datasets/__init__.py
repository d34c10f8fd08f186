"""Datasets: procedural scenes and VLN-CE-format episodes for the embedded simulator."""
