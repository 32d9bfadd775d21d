"""A live call on the switch: what call-handling code may ask of it, the trunk call behind it, the post-call survey."""
