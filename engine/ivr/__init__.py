"""YAML IVR trees: format (docs/ivr.md), node types (nodes/), loader and lint, runtime, tools."""
