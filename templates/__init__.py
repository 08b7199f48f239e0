"""Jinja2 templates of every config.pbtxt that `build` emits (packaged as ugt_ensemble.templates)."""
