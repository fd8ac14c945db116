"""The Bitrix24 messenger chat bot: Chatbots 2.0 (``imbot.v2``) in fetch mode, reply sender."""
