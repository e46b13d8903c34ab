"""Tencent Cloud IM (REST API v4) provider."""
