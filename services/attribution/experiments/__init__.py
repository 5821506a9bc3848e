"""Experiments on content variants: which cut works better, and whether the difference is real."""
