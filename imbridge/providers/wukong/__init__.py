"""WuKongIM v2 (self-hosted): provider, wire shapes, mapping, webhook parsing."""
