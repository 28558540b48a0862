"""pytest fixtures shipped with errorkit (registered through the pytest11 entry point)."""
