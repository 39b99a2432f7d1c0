"""Local stand-ins of the platforms the bot talks to: small HTTP servers on 127.0.0.1."""
