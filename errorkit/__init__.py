"""errorkit: one error boundary for Python services."""
