"""Media files: discovery under a root, decoding any container to mono float32, windowing."""
