"""protocol package (filled in by its issue)."""
