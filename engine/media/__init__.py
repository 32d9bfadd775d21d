"""Prompt rendering (TTS with an offline fallback), Mandarin readouts and the recordings archive."""
