"""Command-line verbs: the CLI, batch pre-annotation, evaluation and their console output."""
