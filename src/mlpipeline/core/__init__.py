"""Pure logic: data contracts, splitting, models, metrics and the promotion gate (no files, no services)."""
