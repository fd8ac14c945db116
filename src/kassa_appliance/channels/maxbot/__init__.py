"""The MAX messenger bot: MAX Bot API long polling, keyboards, image upload, reply sender."""
