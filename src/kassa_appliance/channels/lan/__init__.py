"""The LAN API: Atol Web Requests and KKMServer compatible HTTP on the same exactly-once queue."""
