"""A MAX Bot API emulator (aiohttp), faithful to the official OpenAPI schema."""
