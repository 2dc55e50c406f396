"""The baseline servers the benchmark compares ours with (each runs as its own uvicorn process)."""
