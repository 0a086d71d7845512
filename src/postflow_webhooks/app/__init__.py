"""Application layer: settings, the composition root, the CLI and the facade."""
