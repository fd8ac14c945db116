"""The chat conversation that composes a receipt: one small state machine per chat,
independent of the messenger (the Bitrix24 and MAX bots are its transports)."""
