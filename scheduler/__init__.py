"""scheduler package (filled in by its issue)."""
