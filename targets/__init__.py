"""One module per target: each composes the components for a validated plan."""
