"""Pickwise reranker: Cross-encoder, learned ranker and real-time behaviour boost."""
