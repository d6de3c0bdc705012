"""The composition root: settings to concrete driver, store, runner and services."""
