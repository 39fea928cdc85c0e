"""Thin DRF views of the accounts context: parse, call one use case, answer or raise."""
