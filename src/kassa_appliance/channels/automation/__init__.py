"""CRM automation: offline events (deal stage, payment) → receipt jobs built from the deal,
results back to the deal's timeline."""
