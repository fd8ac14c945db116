"""kassa-relay: the public, stateless, multi-tenant relay between Bitrix24's REST cashbox
(and ATOL Online clients) and the appliances, with all state in NATS JetStream."""
