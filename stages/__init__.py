"""Thin CLI entry points, one per DVC stage: read artifacts and params, call al_core, write artifacts."""
