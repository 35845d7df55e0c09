"""Pickwise gateway: Public REST API, web page, auth, orchestration and event publishing."""
