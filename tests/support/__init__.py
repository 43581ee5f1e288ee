"""Helpers shared by the project's tests: probe models, synthetic report data, a headless browser, hook counting."""
