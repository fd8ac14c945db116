"""Bitrix24 portal and push server emulator (tests, demo, benchmarks)."""
