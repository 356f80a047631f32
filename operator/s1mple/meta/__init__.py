"""Meta workflows: Optimization and VariantTest specs, planning, aggregation (see docs/meta.md)."""
