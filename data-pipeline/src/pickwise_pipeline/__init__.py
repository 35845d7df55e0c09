"""Pickwise offline pipeline: catalog ingest, evaluation, ranker training and the other batch jobs."""
