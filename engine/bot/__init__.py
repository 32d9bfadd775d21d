"""The voice bot: streaming speech recognition from the media tap (asr, vad, tap) and dialogues."""
