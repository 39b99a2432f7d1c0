"""Conversation flows: channel-agnostic state machines. They know nothing of Twilio or Telegram."""
