"""The appliance side of the cloud relay: a durable JetStream consumer per kassa, results back."""
