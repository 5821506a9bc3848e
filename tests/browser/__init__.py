"""The dashboard in a real browser, and how its files are served."""
