"""Integrations: the transformers KV cache and the lm-eval adapter."""
