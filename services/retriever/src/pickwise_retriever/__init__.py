"""Pickwise retriever: Query understanding, BM25 + dense retrieval, fusion, filters, item lookup."""
