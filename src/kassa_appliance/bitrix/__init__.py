"""The Bitrix24 link: REST client, OAuth token handling, Push&Pull client and the job protocol."""
