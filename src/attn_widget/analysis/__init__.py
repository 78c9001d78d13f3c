"""A model run through a backend: one prompt and its one pass, the value pass, the repeated-token
and retrieval tests, datasets."""
