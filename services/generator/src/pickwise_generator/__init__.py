"""Pickwise generator: Grounded answer text: Groq, OpenAI-compatible, offline template."""
